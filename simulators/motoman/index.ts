/**
 * Motoman YRC1000 simulator: the robot model, its Modbus face (`MotomanSim`),
 * its OPC UA face (`MotomanOpcuaFace`, OPC 40010 + a Motoman folder) and an
 * HTTP control interface. See ./README.md.
 *
 * The OPC UA face pulls in node-opcua, which takes a while to load: import it
 * from "./opcua-face.js" only where it is used, not through this index.
 */
export { RobotModel, REFUSAL, describeRefusal, type EstopSource, type RobotInitialState, type RobotInputs, type RobotMode, type RobotModelOptions, type RobotStatus } from "./model.js";
export { DEFAULT_AXES, defaultJobs, homePose, type JobDef, type JobPhaseDef } from "./jobs.js";
import type { MotomanOpcuaFace, MotomanOpcuaFaceOptions } from "./opcua-face.js";
import type { MotomanSim } from "./sim.js";

export { MotomanSim, type CommDrop, type MotomanSimOptions, type StatusListener } from "./sim.js";
export { startMotomanControlServer, type MotomanControlOptions, type MotomanControlServer } from "./control.js";
export type { MotomanOpcuaFace, MotomanOpcuaFaceOptions } from "./opcua-face.js";

/** Start an OPC UA face on `sim`, loading node-opcua only now. */
export async function startMotomanOpcuaFace(
  sim: MotomanSim,
  opts: MotomanOpcuaFaceOptions = {},
): Promise<MotomanOpcuaFace> {
  const { MotomanOpcuaFace } = await import("./opcua-face.js");
  const face = new MotomanOpcuaFace(sim, opts);
  await face.start();
  return face;
}
