/**
 * A coupler's communication watchdog, as WAGO 750-352/362, Moxa ioLogik and
 * Turck BL20/TBEN couplers have one: a holding register holds the watchdog
 * time; once a client writes a non-zero time there the watchdog is armed,
 * every request to the unit restarts it, and when no request arrives within
 * the time the coupler drives its outputs to their safe state (0) and raises
 * a flag. Writing the register again re-arms it and clears the flag; writing
 * 0 switches it off.
 */
import { CellioError } from "../../src/infra/errors.js";
import type { RegisterBank } from "./bank.js";

export interface CommWatchdogOptions {
  /** Holding register of the watchdog time (WAGO: 0x1000). */
  readonly register: number;
  /** Milliseconds per unit of the register's value (WAGO: 100; default 1). */
  readonly unitMs?: number;
  /** Coils driven to 0 on expiry, [first, count] (default: every coil of the bank). */
  readonly coils?: readonly [number, number];
  /** Holding registers driven to 0 on expiry, [first, count] (default: none). */
  readonly registers?: readonly [number, number];
  /** Discrete input raised while the watchdog has expired (default: none). */
  readonly flagInput?: number;
}

export class CommWatchdog {
  /** The watchdog expired and has not been re-armed since. */
  expired = false;
  /** Expiries since start. */
  expiries = 0;
  private timeoutMs = 0;
  private timer: NodeJS.Timeout | undefined;
  private readonly unsubscribe: () => void;

  constructor(
    private readonly bank: RegisterBank,
    private readonly opts: CommWatchdogOptions,
  ) {
    const r = opts.register;
    if (!Number.isInteger(r) || r < 0 || r >= bank.holdingRegisters.length) {
      throw new CellioError("CELLIO_ERR_SIM", `watchdog register ${r} is outside the bank's holding registers`);
    }
    this.unsubscribe = bank.onWrite((area, addr, count) => {
      if (area === "hr" && addr <= r && r < addr + count) this.arm(bank.getRegister("hr", r));
    });
  }

  /** The watchdog time in ms; 0 when off. */
  get armedMs(): number {
    return this.timeoutMs;
  }

  /** A request reached the unit: restart the time. */
  kick(): void {
    this.timer?.refresh();
  }

  stop(): void {
    this.disarm();
    this.unsubscribe();
  }

  private arm(value: number): void {
    this.disarm();
    this.timeoutMs = value * (this.opts.unitMs ?? 1);
    this.expired = false;
    if (this.opts.flagInput !== undefined) this.bank.setBit("di", this.opts.flagInput, false);
    if (this.timeoutMs > 0) this.timer = setTimeout(() => this.expire(), this.timeoutMs);
  }

  private disarm(): void {
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
  }

  private expire(): void {
    this.timer = undefined;
    this.expired = true;
    this.expiries++;
    const [c0, cn] = this.opts.coils ?? [0, this.bank.coils.length];
    this.bank.coils.fill(0, c0, c0 + cn);
    if (this.opts.registers) {
      const [r0, rn] = this.opts.registers;
      this.bank.holdingRegisters.fill(0, r0, r0 + rn);
    }
    if (this.opts.flagInput !== undefined) this.bank.setBit("di", this.opts.flagInput, true);
  }
}
