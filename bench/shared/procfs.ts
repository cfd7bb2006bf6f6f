/**
 * Reads another process's CPU time and resident memory from /proc, the way `top` does: the figures
 * include every thread of the process (libuv's pool, V8's GC helpers), which `process.cpuUsage()`
 * inside the server would also report but which the server would then have to be asked for.
 *
 * @module
 */
import { execFileSync } from "node:child_process";
import { readdirSync, readFileSync } from "node:fs";

/** Clock ticks per second of /proc/<pid>/stat's utime and stime (`getconf CLK_TCK`, almost always 100). */
export function clockTicksPerSecond(): number {
  try {
    const ticks = Number(execFileSync("getconf", ["CLK_TCK"], { encoding: "utf8" }).trim());
    return Number.isInteger(ticks) && ticks > 0 ? ticks : 100;
  } catch {
    return 100;
  }
}

/**
 * User plus system CPU time of process `pid`, in milliseconds (resolution: one clock tick, 10 ms).
 *
 * @throws when the process does not exist
 */
export function cpuMs(pid: number, ticksPerSecond: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  // The command name (field 2) is in parentheses and may contain spaces: count fields after the last ")".
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  // After the name, fields start at 3 (state); utime is field 14 and stime field 15.
  const utime = Number(fields[14 - 3]);
  const stime = Number(fields[15 - 3]);
  return ((utime + stime) * 1000) / ticksPerSecond;
}

/**
 * Steal time of each of `cpus` since boot, in milliseconds, from one read of /proc/stat: how long
 * the hypervisor ran something else while that virtual CPU had work (the 8th number of its line, in
 * clock ticks). On a shared virtual machine, a pinned process's stalls of 10 ms and more show up
 * here. Undefined when a CPU's line is missing or has no steal column.
 */
export function stealMs(cpus: readonly number[], ticksPerSecond: number): number[] | undefined {
  const lines = readFileSync("/proc/stat", "utf8").split("\n");
  const steals = cpus.map((cpu) =>
    Number(
      lines
        .find((line) => line.startsWith(`cpu${cpu} `))
        ?.trim()
        .split(/\s+/)[8],
    ),
  );
  return steals.some(Number.isNaN) ? undefined : steals.map((ticks) => (ticks * 1000) / ticksPerSecond);
}

/**
 * Resident set size of process `pid` (VmRSS of /proc/<pid>/status), in KiB.
 *
 * @throws when the process does not exist or the field is missing
 */
export function rssKiB(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, "utf8");
  const match = /^VmRSS:\s+(\d+)\s+kB$/m.exec(status);
  if (match === null) throw new Error(`no VmRSS in /proc/${pid}/status`);
  return Number(match[1]);
}

/** This process's soft limit on open files (children inherit it); undefined when unreadable. */
export function openFilesLimit(): number | undefined {
  try {
    const match = /^Max open files\s+(\d+|unlimited)/m.exec(readFileSync("/proc/self/limits", "utf8"));
    if (match === null) return undefined;
    return match[1] === "unlimited" ? Number.POSITIVE_INFINITY : Number(match[1]);
  } catch {
    return undefined;
  }
}

/**
 * The pids whose parent is `pid`, found by reading every /proc/<n>/stat (field 4 is the parent):
 * `/proc/<pid>/task/<tid>/children` would be shorter but exists only on kernels built with
 * CONFIG_PROC_CHILDREN, and lists the children of one thread at a time.
 */
export function childPids(pid: number): number[] {
  const children: number[] = [];
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    let stat: string;
    try {
      stat = readFileSync(`/proc/${entry}/stat`, "utf8");
    } catch {
      continue; // exited while we looked
    }
    const parent = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[4 - 3]);
    if (parent === pid) children.push(Number(entry));
  }
  return children.sort((a, b) => a - b);
}

/**
 * How many local ports connect() may pick from (net.ipv4.ip_local_port_range); undefined when
 * unreadable. Every connection from one source address to one server address needs its own: this
 * bounds how many connections the load generators can hold to one server.
 */
export function ephemeralPortCount(): number | undefined {
  try {
    const [low, high] = readFileSync("/proc/sys/net/ipv4/ip_local_port_range", "utf8").trim().split(/\s+/).map(Number);
    return low !== undefined && high !== undefined && high >= low ? high - low + 1 : undefined;
  } catch {
    return undefined;
  }
}
