// The reference fingerprints of Alpes' Avro schemas, from Apache Avro's own
// Java implementation: for each .avsc file named on the command line, one
// line "<file name>\t<Parsing Canonical Form>\t<fingerprint>", where the
// fingerprint is SchemaNormalization.parsingFingerprint64 as the 8 bytes of
// the single-object header (little-endian, as BinaryMessageEncoder writes
// them), in hex. Run by schemas/tests/java/fingerprints.sh.
import java.io.File;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import org.apache.avro.Schema;
import org.apache.avro.SchemaNormalization;

public class Fingerprints {
  public static void main(String[] args) throws Exception {
    for (String path : args) {
      Schema schema = new Schema.Parser().parse(new File(path));
      String canonical = SchemaNormalization.toParsingForm(schema);
      long fp = SchemaNormalization.parsingFingerprint64(schema);
      byte[] le = ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN).putLong(fp).array();
      StringBuilder hex = new StringBuilder();
      for (byte b : le) {
        hex.append(String.format("%02x", b));
      }
      System.out.println(new File(path).getName() + "\t" + canonical + "\t" + hex);
    }
  }
}
