/**
 * A throwaway PKI for TLS tests, made with the `openssl` command at test
 * time in a temporary directory (nothing is checked in): a CA, a broker
 * certificate for 127.0.0.1 signed by it, client certificates signed by it,
 * and a rogue CA with a broker certificate of its own (a man in the middle).
 * EC P-256 keys: fast to make. Needs the Debian package `openssl`.
 */
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";

export function opensslInstalled(): boolean {
  return spawnSync("openssl", ["version"], { encoding: "utf8" }).status === 0;
}

function openssl(dir: string, args: readonly string[]): void {
  const r = spawnSync("openssl", args, { cwd: dir, encoding: "utf8" });
  if (r.status !== 0) throw new Error(`openssl ${args.join(" ")} failed (${String(r.status)}): ${r.stderr}`);
}

const KEY = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];

export interface Pki {
  readonly dir: string;
  /** File names (relative to `dir`) of a CA: `<name>.pem`, `<name>.key`. */
  ca(name: string): void;
  /** A leaf certificate `<name>.pem` / `<name>.key` signed by CA `caName`. */
  leaf(name: string, caName: string, o: { cn: string; server?: { altNames: string } }): void;
  file(name: string): string;
  remove(): void;
}

export function makePki(): Pki {
  const dir = mkdtempSync(path.join(os.tmpdir(), "cellio-pki-"));
  return {
    dir,
    ca(name) {
      openssl(dir, [
        "req", "-x509", ...KEY, "-keyout", `${name}.key`, "-out", `${name}.pem`, "-days", "2", "-subj", `/CN=${name}`,
        "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign",
      ]);
    },
    leaf(name, caName, o) {
      openssl(dir, ["req", "-new", ...KEY, "-keyout", `${name}.key`, "-out", `${name}.csr`, "-subj", `/CN=${o.cn}`]);
      const ext = o.server
        ? `basicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\nsubjectAltName=${o.server.altNames}\n`
        : "basicConstraints=CA:FALSE\nextendedKeyUsage=clientAuth\n";
      writeFileSync(path.join(dir, `${name}.ext`), ext);
      openssl(dir, [
        "x509", "-req", "-in", `${name}.csr`, "-CA", `${caName}.pem`, "-CAkey", `${caName}.key`, "-CAcreateserial",
        "-out", `${name}.pem`, "-days", "2", "-extfile", `${name}.ext`,
      ]);
    },
    file(name) {
      return path.join(dir, name);
    },
    remove() {
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
