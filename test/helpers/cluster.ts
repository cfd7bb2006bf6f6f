/**
 * Cluster nodes as separate processes (test/fixtures/cluster-node.ts), for the multi-process tests.
 */
import { spawn, type ChildProcess } from "node:child_process";

/** A running node process. */
export interface NodeProcess {
  child: ChildProcess;
  port: number;
  url: string;
  nodeId: string;
}

/**
 * Starts a node joined to the Redis at `redisUrl`; resolves once it listens. Its presence events are
 * off unless `presenceEventsMaxMembers` is given.
 */
export async function startNode(redisUrl: string, presenceEventsMaxMembers = 0): Promise<NodeProcess> {
  const args = ["--import", "tsx", "test/fixtures/cluster-node.ts", redisUrl, String(presenceEventsMaxMembers)];
  const child = spawn(process.execPath, args, {
    stdio: ["ignore", "pipe", "inherit"],
  });
  const line = await new Promise<string>((resolve, reject) => {
    let output = "";
    const timer = setTimeout(() => reject(new Error(`node did not start: ${output}`)), 20_000);
    child.stdout!.on("data", (chunk: Buffer) => {
      output += chunk.toString();
      const ready = /READY (\d+) (\S+)/.exec(output);
      if (ready) {
        clearTimeout(timer);
        resolve(ready[0]);
      }
    });
    child.once("exit", (code) => reject(new Error(`node exited with ${code}: ${output}`)));
  });
  const [, port, nodeId] = line.split(" ");
  return { child, port: Number(port), url: `ws://127.0.0.1:${port}/ws`, nodeId: nodeId! };
}

/** Stops a node (SIGTERM: graceful; SIGKILL: a crash) and resolves with its exit code. */
export async function stopNode(node: NodeProcess, signal: NodeJS.Signals = "SIGTERM"): Promise<number | null> {
  if (node.child.exitCode !== null || node.child.signalCode !== null) return node.child.exitCode;
  const exited = new Promise<number | null>((resolve) => node.child.once("exit", (code) => resolve(code)));
  node.child.kill(signal);
  return exited;
}
