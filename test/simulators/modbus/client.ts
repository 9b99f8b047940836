/** modbus-serial as the master in the simulator tests. */
import ModbusSerial from "modbus-serial";

// modbus-serial is CommonJS with `module.exports = ModbusRTU`: under NodeNext the
// default import IS the class at run time, while TypeScript types it as the namespace.
export const ModbusRTU = ModbusSerial as unknown as typeof ModbusSerial.default;
export type ModbusClient = InstanceType<typeof ModbusRTU>;

export async function tcpClient(port: number, unit = 1, timeoutMs = 500): Promise<ModbusClient> {
  const c = new ModbusRTU();
  await c.connectTCP("127.0.0.1", { port });
  c.setID(unit);
  c.setTimeout(timeoutMs);
  return c;
}

/** RTU frames over TCP: modbus-serial calls this port "telnet" (its "TcpRTUBuffered" port speaks MBAP). */
export async function rtuOverTcpClient(port: number, unit = 1, timeoutMs = 500): Promise<ModbusClient> {
  const c = new ModbusRTU();
  await c.connectTelnet("127.0.0.1", { port });
  c.setID(unit);
  c.setTimeout(timeoutMs);
  return c;
}

export function closeClient(c: ModbusClient): Promise<void> {
  return new Promise((resolve) => {
    if (!c.isOpen) return resolve();
    c.close(() => resolve());
  });
}

/** The Modbus exception code of a failed request (undefined for other errors). */
export async function exceptionOf(p: Promise<unknown>): Promise<number | undefined> {
  try {
    await p;
  } catch (e) {
    return (e as { modbusCode?: number }).modbusCode;
  }
  throw new Error("request succeeded, expected an exception");
}

/** The error of a request that must fail. */
export async function failureOf(p: Promise<unknown>): Promise<{ message: string; errno?: string; modbusCode?: number }> {
  try {
    await p;
  } catch (e) {
    return e as { message: string; errno?: string; modbusCode?: number };
  }
  throw new Error("request succeeded, expected a failure");
}

/** FC 23 through modbus-serial's callback API. */
export function readWriteRegisters(c: ModbusClient, readAddr: number, readQty: number, writeAddr: number, values: number[]): Promise<number[]> {
  return new Promise((resolve, reject) =>
    c.writeFC23(c.getID(), readAddr, readQty, writeAddr, values.length, values, (err, res) => (err ? reject(err) : resolve(res.data))),
  );
}
