// The package as a user installs it: `npm pack` holds the README, the sources
// and the types; packed and installed into an empty project it imports in
// Node, and its types check a TypeScript consumer that narrows event data.

import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { test } from "node:test";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..", "..");
const npm = process.platform === "win32" ? "npm.cmd" : "npm";
const manifest = JSON.parse(readFileSync(join(root, "package.json"), "utf8"));

test("package.json: name, version, ESM, exports with types, no runtime dependency", () => {
  assert.equal(manifest.name, "@community-live/client");
  assert.match(manifest.version, /^\d+\.\d+\.\d+/);
  assert.equal(manifest.type, "module");
  assert.equal(manifest.exports["."].types, "./types/index.d.ts");
  assert.equal(manifest.exports["."].default, "./src/index.js");
  assert.equal(manifest.types, "./types/index.d.ts");
  assert.equal(manifest.dependencies, undefined);
});

test("npm pack holds the README, the sources and the types; installed, it imports and its types check", { timeout: 180_000 }, () => {
  const dir = mkdtempSync(join(tmpdir(), "community-live-client-"));
  try {
    const [packed] = JSON.parse(
      execFileSync(npm, ["pack", "--json", "--pack-destination", dir], { cwd: root, encoding: "utf8" }),
    );
    const files = packed.files.map((/** @type {{path: string}} */ file) => file.path).sort();
    for (const required of ["README.md", "package.json", "src/index.js", "src/client.js", "types/index.d.ts", "types/client.d.ts"]) {
      assert.ok(files.includes(required), `${required} missing from ${files}`);
    }
    for (const file of files) {
      assert.match(file, /^(README\.md|package\.json|LICENSE|src\/.+\.(js|ts)|types\/.+\.d\.ts)$/, `unexpected ${file}`);
    }
    writeFileSync(join(dir, "package.json"), JSON.stringify({ name: "consumer", private: true, type: "module" }));
    execFileSync(npm, ["install", "--no-audit", "--no-fund", "--offline", join(dir, packed.filename)], { cwd: dir });
    const imported = execFileSync(
      process.execPath,
      ["--input-type=module", "-e", "const m = await import('@community-live/client'); console.log(Object.keys(m).sort().join(','))"],
      { cwd: dir, encoding: "utf8" },
    );
    for (const name of ["CommunityClient", "connect", "backoffDelay", "decideAfterClose", "SeqBook"]) {
      assert.ok(imported.split(",").map((s) => s.trim()).includes(name), `${name} not exported: ${imported}`);
    }
    writeFileSync(
      join(dir, "consumer.ts"),
      `import { CommunityClient, type ChannelEvent, type StateChange } from "@community-live/client";
type PostCreated = { id: string; content: string };
const client = new CommunityClient({ url: "ws://localhost:8000/ws", getToken: async () => "t" });
client.onState((change: StateChange) => console.log(change.state, change.reason));
client.subscribe<PostCreated>("feed", (event: ChannelEvent<PostCreated>) => {
  const id: string = event.data.id;
  console.log(id, event.seq);
}, { onGap: (gap) => console.log(gap.since, gap.seq) });
client.subscribe("leaderboard", (event) => {
  // @ts-expect-error data is unknown until narrowed
  console.log(event.data.id);
});
const unread: number = client.inbox.unread;
client.inbox.markRead();
// @ts-expect-error private
client._book;
console.log(unread);
`,
    );
    const tsc = join(root, "node_modules", "typescript", "bin", "tsc");
    run(
      [tsc, "--noEmit", "--strict", "--module", "nodenext", "--moduleResolution", "nodenext", "--target", "es2022", "--lib", "es2022,dom", "--skipLibCheck", "consumer.ts"],
      dir,
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

/**
 * @param {string[]} args
 * @param {string} cwd
 */
function run(args, cwd) {
  try {
    execFileSync(process.execPath, args, { cwd, encoding: "utf8" });
  } catch (error) {
    const { stdout, stderr } = /** @type {{stdout: string, stderr: string}} */ (error);
    throw new Error(`${args.join(" ")} failed:\n${stdout}${stderr}`);
  }
}
