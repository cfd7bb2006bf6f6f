/**
 * `--config FILE`: the JSON file with the namespaces and their rules (docs/PERMISSIONS.md). Read and
 * checked once at start; any problem stops the server with exit code 2 and a message naming the
 * file, and for a bad rule the namespace, the rule and what it accepts.
 *
 * @module
 */
import { readFileSync, statSync } from "node:fs";
import { ConfigurationError, parseConfigFile, type ConfigFile } from "../namespaces/config.js";

/** A configuration file is a page of rules, not data: anything larger is a mistake. */
const MAX_FILE_BYTES = 1024 * 1024;

/**
 * Reads and checks a configuration file.
 *
 * @throws ConfigurationError naming the file and what is wrong with it
 */
export function loadConfigFile(path: string): ConfigFile {
  let text: string;
  try {
    const size = statSync(path).size;
    if (size > MAX_FILE_BYTES) throw new ConfigurationError(`${path}: the configuration file is ${size} bytes; at most ${MAX_FILE_BYTES}`);
    text = readFileSync(path, "utf8");
  } catch (error) {
    if (error instanceof ConfigurationError) throw error;
    const code = (error as NodeJS.ErrnoException).code;
    throw new ConfigurationError(`${path}: cannot read the configuration file (${code ?? String(error)})`);
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    throw new ConfigurationError(`${path}: the configuration file is not valid JSON (${(error as Error).message})`);
  }
  return parseConfigFile(value, path);
}
