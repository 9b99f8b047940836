/**
 * `freePort()`: asks the OS for a TCP port on 127.0.0.1 that is free at that
 * moment, for servers that must be given a concrete port before they listen
 * (node-opcua's `OPCUAServer`). Used by the Motoman OPC UA face and by the
 * tests that start OPC UA servers. Another process may take the port between
 * this call and the listen.
 */
import net from "node:net";

/** A port that was free a moment ago on 127.0.0.1 (node-opcua needs a concrete port). */
export async function freePort(): Promise<number> {
  const srv = net.createServer();
  await new Promise<void>((resolve, reject) => {
    srv.once("error", reject);
    srv.listen(0, "127.0.0.1", () => resolve());
  });
  const { port } = srv.address() as net.AddressInfo;
  await new Promise<void>((resolve) => srv.close(() => resolve()));
  return port;
}
