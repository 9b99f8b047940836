/**
 * What the two MQTT benchmarks (mqtt.bench.ts, mqtt-outage.bench.ts) share:
 * a cell of 1,000 holding-register points on one Modbus simulator whose
 * registers all change every 10 ms cycle, and a mosquitto set up as
 * config/mosquitto/mosquitto.conf (Receive Maximum 100) with cellio's user
 * and a read-only `watcher`.
 */
import { ModbusTcpSimServer, RegisterBank } from "../../simulators/modbus/index.js";
import { Mosquitto } from "../helpers/mosquitto.js";

export const POINTS = 1000;
export const PERIOD = 10;
export const WATCHER = { username: "watcher", password: "watch" } as const;

/** The bench cell, with an `mqtt:` block when one is given, and the loop's thread real-time when asked. */
export function benchCellYaml(cell: string, port: number, mqttBlock?: object, realtimePriority?: number): string {
  const points = Array.from({ length: POINTS }, (_, i) => `      p${i}: { address: "hr:${i}" }`).join("\n");
  return `
version: 1
cell: { id: ${cell} }
cycle: { period_ms: ${PERIOD}, input_budget_ms: 5, output_budget_ms: 3${realtimePriority === undefined ? "" : `, realtime_priority: ${realtimePriority}`} }
devices:
  io:
    protocol: modbus-tcp
    host: 127.0.0.1
    port: ${port}
    timeout_ms: 50
    stale_after_ms: 1000
    points:
${points}
${mqttBlock ? `mqtt: ${JSON.stringify(mqttBlock)}` : ""}
`;
}

/** The simulator the cell reads, every register changing every cycle. */
export async function startChangingSim(): Promise<{ port: number; stop: () => Promise<void> }> {
  const bank = new RegisterBank();
  const sim = new ModbusTcpSimServer({ port: 0, units: bank });
  const { port } = await sim.start();
  let k = 0;
  const changer = setInterval(() => {
    k = (k + 1) & 0x7fff;
    const words = bank.holdingRegisters;
    for (let i = 0; i < POINTS; i++) words[i] = (k + i) & 0xffff;
  }, PERIOD);
  return {
    port,
    stop: async () => {
      clearInterval(changer);
      await sim.stop();
    },
  };
}

/**
 * mosquitto with cellio's bench user (password in BENCH_MQTT_PW, which the
 * north worker reads from its copy of this environment) and the watcher, and
 * the `mqtt:` block that logs cellio in.
 */
export async function startBenchBroker(cell: string, user: string): Promise<{ broker: Mosquitto; block: Record<string, unknown> }> {
  const acl = `pattern read cellio/#
user ${user}
topic readwrite cellio/${cell}/#
`;
  const broker = await Mosquitto.start({
    users: { [user]: "bench", [WATCHER.username]: WATCHER.password },
    acl,
    extra: ["max_inflight_messages 100", "max_queued_messages 1000"],
  });
  process.env.BENCH_MQTT_PW = "bench";
  return { broker, block: { url: broker.url, username: user, password_env: "BENCH_MQTT_PW", publish_interval_ms: 100, reconnect_ms: 500 } };
}
