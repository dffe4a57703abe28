// Test app of the `java` image: an HTTP server on port 8080 (or args[0]) built on the JDK's
// com.sun.net.httpserver. Each request resolves `localhost` (InetAddress, through NSS), makes a
// SHA-256 digest and a gzip stream (java.util.zip, libzip) and answers 200 "ok"; any failure
// answers 500 with the error.
import com.sun.net.httpserver.HttpExchange;
import com.sun.net.httpserver.HttpServer;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.OutputStream;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.util.zip.GZIPOutputStream;

public final class Server {
    private Server() {}

    private static void handle(HttpExchange ex) throws IOException {
        int status;
        byte[] body;
        try {
            InetAddress.getAllByName("localhost");
            MessageDigest.getInstance("SHA-256").digest("oci-slim".getBytes(StandardCharsets.UTF_8));
            ByteArrayOutputStream buf = new ByteArrayOutputStream();
            try (GZIPOutputStream gz = new GZIPOutputStream(buf)) {
                gz.write("oci-slim oci-slim oci-slim".getBytes(StandardCharsets.UTF_8));
            }
            status = 200;
            body = "ok".getBytes(StandardCharsets.UTF_8);
        } catch (Exception e) {
            status = 500;
            body = ("error: " + e + "\n").getBytes(StandardCharsets.UTF_8);
        }
        ex.getResponseHeaders().set("Content-Type", "text/plain");
        ex.sendResponseHeaders(status, body.length);
        try (OutputStream os = ex.getResponseBody()) {
            os.write(body);
        }
    }

    public static void main(String[] args) throws IOException {
        int port = args.length > 0 ? Integer.parseInt(args[0]) : 8080;
        HttpServer server = HttpServer.create(new InetSocketAddress("0.0.0.0", port), 16);
        server.createContext("/", Server::handle);
        server.start();
        System.err.println("java server listening on 0.0.0.0:" + port);
    }
}
