/**
 * A bounded queue, FIFO per key and round-robin between keys (pure): the
 * waiting room of a shared line (an RTU bus, a TCP connection to a gateway),
 * keyed by unit id, so one unit's backlog never holds back another.
 */
/**
 * A bounded queue, FIFO per key and round-robin between keys: `shift()`
 * takes the oldest item of the key whose turn it is, and that key (if it
 * still has items) goes to the back of the line.
 */
export class FairQueue<T> {
  private readonly lanes = new Map<number, T[]>();
  /** Keys with items, in the order they will be served. */
  private readonly turn: number[] = [];
  private count = 0;

  constructor(readonly capacity: number) {}

  get size(): number {
    return this.count;
  }

  /** False (and nothing queued) when the queue is full. */
  push(key: number, item: T): boolean {
    if (this.count >= this.capacity) return false;
    const lane = this.lanes.get(key);
    if (lane) lane.push(item);
    else {
      this.lanes.set(key, [item]);
      this.turn.push(key);
    }
    this.count++;
    return true;
  }

  shift(): T | undefined {
    const key = this.turn.shift();
    if (key === undefined) return undefined;
    const lane = this.lanes.get(key)!;
    const item = lane.shift()!;
    if (lane.length > 0) this.turn.push(key);
    else this.lanes.delete(key);
    this.count--;
    return item;
  }

  remove(key: number, item: T): boolean {
    const lane = this.lanes.get(key);
    const i = lane ? lane.indexOf(item) : -1;
    if (!lane || i < 0) return false;
    lane.splice(i, 1);
    if (lane.length === 0) {
      this.lanes.delete(key);
      this.turn.splice(this.turn.indexOf(key), 1);
    }
    this.count--;
    return true;
  }

  /** Every queued item, in no particular order (for deadline scans). */
  *items(): IterableIterator<T> {
    for (const lane of this.lanes.values()) yield* lane;
  }

  /** Empties the queue; returns what it held, in the order it would have been served. */
  drain(): T[] {
    const out: T[] = [];
    for (let t = this.shift(); t !== undefined; t = this.shift()) out.push(t);
    return out;
  }
}
