/**
 * Transactions of the job store: durable ones alone, the rest grouped per turn of the
 * event loop.
 *
 * @module
 */
import type { DatabaseSync, StatementSync } from "node:sqlite";
import { setImmediate } from "node:timers";

const BUMP = `INSERT INTO meta (key, value) VALUES (?, ?)
  ON CONFLICT (key) DO UPDATE SET value = CAST(value AS INTEGER) + excluded.value`;

/**
 * Runs the store's transactions. Durable ones commit at once with `synchronous=FULL`
 * (after the open group, so it reaches the disk too). The others join one group
 * transaction that commits when the current turn of the event loop ends: a burst of a
 * run's events (running, progress, executed, completed arrive together) costs one commit,
 * not one each, and a counter in `meta` is written once per group. Each change is its own
 * savepoint, so a failing one undoes only itself. This process sees its changes at once;
 * other connections see them when the group commits. A crash of gov within the turn drops
 * the group, as an OS crash drops `synchronous=NORMAL` commits: nothing the client was
 * promised (a 201, a cancel) is in it, and a run's progress is rebuilt from its backend on
 * the next start.
 *
 * @example
 * ```ts
 * import { DatabaseSync } from "node:sqlite";
 * const db = new DatabaseSync(":memory:");
 * const group = new TxGroup(db, (sql) => db.prepare(sql));
 * group.run(false, () => db.exec("CREATE TABLE t (x)"));
 * group.flush();
 * ```
 */
export class TxGroup {
  #db: DatabaseSync;
  #stmt: (sql: string) => StatementSync;
  /** Whether a group transaction is open until the turn ends. */
  #open = false;
  /** Counter changes of the open group, written once each when it commits. */
  #pending = new Map<string, number>();

  constructor(db: DatabaseSync, stmt: (sql: string) => StatementSync) {
    this.#db = db;
    this.#stmt = stmt;
  }

  /** Runs `fn` in a transaction: its own and fsynced when `durable`, else the group's. */
  run<T>(durable: boolean, fn: () => T): T {
    if (durable || !this.#db.isOpen) {
      this.flush();
      if (durable) this.#db.exec("PRAGMA synchronous = FULL");
      this.#db.exec("BEGIN IMMEDIATE");
      try {
        const out = fn();
        this.#db.exec("COMMIT");
        return out;
      } catch (err) {
        this.#db.exec("ROLLBACK");
        throw err;
      } finally {
        if (durable) this.#db.exec("PRAGMA synchronous = NORMAL");
      }
    }
    if (!this.#open) {
      this.#db.exec("BEGIN IMMEDIATE");
      this.#open = true;
      setImmediate(() => this.flush());
    }
    this.#db.exec("SAVEPOINT change");
    const counters = new Map(this.#pending);
    try {
      const out = fn();
      this.#db.exec("RELEASE change");
      return out;
    } catch (err) {
      this.#pending = counters;
      this.#db.exec("ROLLBACK TO change");
      this.#db.exec("RELEASE change");
      throw err;
    }
  }

  /** Commits the open group now. */
  flush(): void {
    if (!this.#open) return;
    if (this.#db.isOpen) {
      this.writeCounters();
      this.#db.exec("COMMIT");
    }
    this.#open = false;
    this.#pending.clear();
  }

  /** Adds `delta` to the counter `key` in `meta`; within a group, once when it commits. */
  bump(key: string, delta: number): void {
    if (this.#open) this.#pending.set(key, (this.#pending.get(key) ?? 0) + delta);
    else this.#stmt(BUMP).run(key, delta);
  }

  /** Writes the group's counters now (before they are read). */
  writeCounters(): void {
    for (const [key, delta] of this.#pending) if (delta !== 0) this.#stmt(BUMP).run(key, delta);
    this.#pending.clear();
  }
}
