/**
 * `cellio hash-password [--user NAME --role ROLE]`: read a password and print
 * its scrypt hash for `opcua.users.<name>.password_hash`. The password comes
 * from standard input, never from the command line (shell history, ps): on a
 * terminal it is asked twice without echo; from a pipe the first line is
 * used (`printf '%s\n' "$PW" | cellio hash-password`).
 */
import { hashPassword } from "../north/opcua-server/password.js";

export interface HashPasswordIo {
  readonly stdin: NodeJS.ReadableStream & { isTTY?: boolean; setRawMode?: (mode: boolean) => unknown };
  readonly stdout: NodeJS.WritableStream;
  readonly stderr: NodeJS.WritableStream;
}

const ROLES = ["viewer", "operator", "engineer"];

/** First line of a piped stream (without the line end). */
function readLine(input: NodeJS.ReadableStream): Promise<string> {
  return new Promise((resolve, reject) => {
    let buf = "";
    const done = (): void => {
      input.off("data", onData);
      input.off("end", done);
      input.off("error", reject);
      input.pause();
      resolve(buf.split(/\r?\n/)[0] ?? "");
    };
    const onData = (chunk: Buffer | string): void => {
      buf += chunk.toString();
      if (buf.includes("\n")) done();
    };
    input.on("data", onData);
    input.once("end", done);
    input.once("error", reject);
    input.resume();
  });
}

/** A line typed on a terminal without echo (raw mode). Ctrl-C aborts. */
function readHidden(io: HashPasswordIo, prompt: string): Promise<string> {
  io.stderr.write(prompt);
  const input = io.stdin;
  return new Promise((resolve, reject) => {
    let buf = "";
    input.setRawMode?.(true);
    const finish = (err?: Error): void => {
      input.off("data", onData);
      input.setRawMode?.(false);
      input.pause();
      io.stderr.write("\n");
      if (err) reject(err);
      else resolve(buf);
    };
    const onData = (chunk: Buffer | string): void => {
      for (const ch of chunk.toString()) {
        if (ch === "\r" || ch === "\n") return finish();
        if (ch === "\u0003") return finish(new Error("aborted"));
        if (ch === "\u007f" || ch === "\b") buf = buf.slice(0, -1);
        else buf += ch;
      }
    };
    input.on("data", onData);
    input.resume();
  });
}

/** Returns the exit code. */
export async function hashPasswordCommand(opts: { user?: string; role?: string }, io: HashPasswordIo = process): Promise<number> {
  if (opts.role !== undefined && !ROLES.includes(opts.role)) {
    io.stderr.write(`--role must be one of ${ROLES.join(", ")}\n`);
    return 2;
  }
  let password: string;
  try {
    if (io.stdin.isTTY === true) {
      password = await readHidden(io, "Password: ");
      const again = await readHidden(io, "Again: ");
      if (again !== password) {
        io.stderr.write("the two passwords differ\n");
        return 1;
      }
    } else {
      password = await readLine(io.stdin);
    }
  } catch (e) {
    io.stderr.write(`${e instanceof Error ? e.message : String(e)}\n`);
    return 1;
  }
  if (password.length < 8) {
    io.stderr.write("password too short: use at least 8 characters\n");
    return 1;
  }
  const hash = await hashPassword(password);
  if (opts.user !== undefined) {
    io.stdout.write(`    ${opts.user}: { password_hash: "${hash}", role: ${opts.role ?? "viewer"} }\n`);
  } else {
    io.stdout.write(`${hash}\n`);
  }
  return 0;
}
