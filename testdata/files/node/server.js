// Test app of the `node` image: an HTTP server on port 3000 (or argv[2]).
//
// Every request lazily loads the core modules `zlib` and `crypto` (require at request time),
// resolves `localhost` through getaddrinfo (dns.lookup, i.e. NSS and /etc/hosts), gzips and
// hashes a small buffer and answers 200 "ok". Any failure answers 500 with the error, so a
// slimmed image that lost a lazily needed file fails visibly.
'use strict';

const http = require('http');

const PORT = Number(process.argv[2] || 3000);

function check(done) {
  try {
    const zlib = require('zlib');
    const crypto = require('crypto');
    const dns = require('dns');
    const packed = zlib.gzipSync(Buffer.from('oci-slim '.repeat(64)));
    if (zlib.gunzipSync(packed).length !== 9 * 64) throw new Error('zlib round trip failed');
    crypto.createHash('sha256').update(packed).digest('hex');
    dns.lookup('localhost', (err, address) => {
      if (err) return done(err);
      if (!address) return done(new Error('no address for localhost'));
      return done(null);
    });
  } catch (e) {
    done(e);
  }
}

const server = http.createServer((req, res) => {
  check((err) => {
    const status = err ? 500 : 200;
    const body = err ? `error: ${err.stack || err}\n` : 'ok';
    res.writeHead(status, { 'Content-Type': 'text/plain', 'Content-Length': Buffer.byteLength(body) });
    res.end(body);
  });
});

server.listen(PORT, '0.0.0.0', () => {
  process.stderr.write(`node server listening on 0.0.0.0:${PORT}\n`);
});
for (const sig of ['SIGTERM', 'SIGINT']) process.on(sig, () => server.close(() => process.exit(0)));
