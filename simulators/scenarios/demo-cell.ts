/**
 * The demo cell's physical process, played by the simulators: the conveyor
 * brings a part to the pick position while it runs; the part is taken away a
 * while after it arrived; supply pressure wanders around 6 bar. The door stays
 * closed until someone opens it through the control interface.
 */
import type { SimulatorSet } from "../runner.js";

export interface DemoTiming {
  /** Conveyor running time until a part reaches the sensor (ms). */
  readonly travelMs: number;
  /** How long a part stays at the pick position (ms). */
  readonly dwellMs: number;
}

export function runDemoScenario(sims: SimulatorSet, timing: DemoTiming = { travelMs: 1500, dwellMs: 2000 }): () => void {
  const io = sims.device("io1").bank;
  io.setBit("di", 0, true); // door closed
  io.setBit("di", 1, false); // no part
  io.setFloat32("ir", 2, 6.0);
  let runningFor = 0;
  let presentFor = 0;
  let t = 0;
  const stepMs = 50;
  const timer = setInterval(() => {
    t += stepMs;
    const running = io.getBit("coil", 0);
    const present = io.getBit("di", 1);
    if (!present) {
      runningFor = running ? runningFor + stepMs : runningFor;
      if (runningFor >= timing.travelMs) {
        io.setBit("di", 1, true);
        runningFor = 0;
        presentFor = 0;
      }
    } else {
      presentFor += stepMs;
      if (presentFor >= timing.dwellMs) io.setBit("di", 1, false);
    }
    io.setFloat32("ir", 2, 6.0 + 0.3 * Math.sin(t / 3000) + (Math.random() - 0.5) * 0.05);
  }, stepMs);
  return () => clearInterval(timer);
}
