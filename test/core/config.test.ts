/** The Worker's configuration: PUBLIC_ORIGIN, the base of links in emails, is an absolute http(s) origin or the Worker refuses to run. */
import { env } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { loadConfig } from "../../core/config";
import { ConfigError } from "../../core/errors";

/** The test env with PUBLIC_ORIGIN set to `value` (a fresh object: loadConfig caches per env). */
function withOrigin(value: string): Env {
  return { ...env, PUBLIC_ORIGIN: value };
}

describe("PUBLIC_ORIGIN", () => {
  it("comes from wrangler.toml's [vars] as an origin", () => {
    expect(loadConfig(env).publicOrigin).toBe(env.PUBLIC_ORIGIN);
    expect(new URL(env.PUBLIC_ORIGIN).origin).toBe(env.PUBLIC_ORIGIN);
  });

  it("is cut to its origin, so links never get a doubled slash or a stray path", () => {
    expect(loadConfig(withOrigin("https://tickets.example/")).publicOrigin).toBe("https://tickets.example");
    expect(loadConfig(withOrigin("https://Tickets.Example:8443/shop?x=1")).publicOrigin).toBe("https://tickets.example:8443");
  });

  it.each(["", "tickets.example", "/checkout", "ftp://tickets.example", "javascript:alert(1)"])("refuses %j, naming PUBLIC_ORIGIN", (value) => {
    let thrown: unknown;
    try {
      loadConfig(withOrigin(value));
    } catch (error) {
      thrown = error;
    }
    expect(thrown).toBeInstanceOf(ConfigError);
    expect(thrown instanceof ConfigError ? thrown.missing : []).toEqual(["PUBLIC_ORIGIN"]);
    expect(String(thrown)).toContain("PUBLIC_ORIGIN");
  });
});
