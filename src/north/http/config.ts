/**
 * The `http:` block of the cell config: Prometheus /metrics and the
 * /healthz and /readyz probes. Localhost only unless the config says otherwise.
 */
import { z } from "zod";

export const httpConfigSchema = z
  .object({
    enabled: z.boolean().default(true).describe("Serve /metrics, /healthz and /readyz"),
    host: z
      .string()
      .min(1)
      .default("127.0.0.1")
      .describe("Address to listen on. 127.0.0.1 keeps it on the machine; 0.0.0.0 exposes it to the network (no authentication)"),
    port: z.number().int().min(0).max(65535).default(9464).describe("TCP port (9464: the usual Prometheus exporter port; 0: any free port)"),
  })
  .strict();

export type HttpConfig = z.infer<typeof httpConfigSchema>;
