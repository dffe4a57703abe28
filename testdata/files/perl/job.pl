#!/usr/bin/perl
# Test job of the `perl` image: core modules only; prints a deterministic line.
use strict;
use warnings;
use List::Util qw(sum max);
use POSIX qw(strftime);

my $total = sum(30, 4, 8);
my $max = max(1, 42, 7);
my $date = strftime("%Y-%m-%d", gmtime(0));
print "perl ok $total $max $date\n";
exit 0;
