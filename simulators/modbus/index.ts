/** Modbus device simulators (TCP, RTU over serial, RTU over TCP) with fault injection and an HTTP control interface. */
export { type Area, type BankSizes, type BitArea, type RegisterArea, RegisterBank, WORD_ORDERS, type WordOrder, type WriteListener } from "./bank.js";
export { BYTE_COUNT_FUNCTIONS, EXCEPTION, FC, LIMITS, WRITE_FUNCTIONS, exceptionPdu, handlePdu, isExceptionPdu, malformPdu } from "./pdu.js";
export {
  type ActiveFault,
  type Decision,
  FAULT_KINDS,
  type Fault,
  FaultInjector,
  type FaultKind,
  type FaultScope,
  MALFORMATIONS,
  type Malformation,
  type ResponseAction,
} from "./faults.js";
export { OrderedSender, type ServerStats, newStats, serveRequest } from "./serve.js";
export { CommWatchdog, type CommWatchdogOptions } from "./watchdog.js";
export {
  MAX_RTU_ADU,
  RtuFrameAssembler,
  type RtuFrame,
  crc16,
  encodeRtuFrame,
  expectedRequestLength,
  hasValidCrc,
  malformRtuFrame,
  silenceMs,
} from "./rtu.js";
export { ModbusRtuSimServer, type ModbusRtuSimOptions, RtuSession, type RtuSessionOptions, type UnknownUnitPolicy } from "./rtu-server.js";
export { MBAP_HEADER, ModbusTcpSimServer, type ModbusTcpSimOptions, encodeMbap, malformMbapFrame } from "./tcp-server.js";
export { type ControlServer, type ControlServerOptions, type ControlTarget, startControlServer } from "./control.js";
