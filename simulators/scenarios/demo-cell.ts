/**
 * The demo cell's physical process, played by the simulators: the conveyor
 * brings a part to the pick position while it runs; the robot takes the part
 * in the pick phase of its job; supply pressure wanders around 6 bar. The
 * robot starts in play mode with remote on. The guard door stays closed and
 * the light curtain clear until someone changes them through the control
 * interface.
 */
import type { SimulatorSet } from "../runner.js";

export interface DemoTiming {
  /** Conveyor running time until a part reaches the sensor (ms). */
  readonly travelMs: number;
}

export function runDemoScenario(sims: SimulatorSet, timing: DemoTiming = { travelMs: 1500 }): () => void {
  const io = sims.device("io1").bank;
  io.setBit("di", 0, true); // door closed
  io.setBit("di", 1, false); // no part
  io.setFloat32("ir", 2, 6.0);
  if (sims.devices.has("curtain")) sims.device("curtain").bank.setBit("di", 0, true);
  const robot = sims.robots.get("robot");
  robot?.setMode("play");
  robot?.setRemote(true);
  let runningFor = 0;
  let t = 0;
  const stepMs = 20;
  const timer = setInterval(() => {
    t += stepMs;
    const running = io.getBit("coil", 0);
    const present = io.getBit("di", 1);
    if (!present) {
      if (running) runningFor += stepMs;
      if (runningFor >= timing.travelMs) {
        io.setBit("di", 1, true);
        runningFor = 0;
      }
    } else if (robot?.model.status.jobPhase === "pick") {
      io.setBit("di", 1, false); // the gripper took it
    }
    io.setFloat32("ir", 2, 6.0 + 0.3 * Math.sin(t / 3000) + (Math.random() - 0.5) * 0.05);
  }, stepMs);
  return () => clearInterval(timer);
}
