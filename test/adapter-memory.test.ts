import { MemoryAdapter } from "../src/index.js";
import { runAdapterContract } from "./adapter-contract.js";

runAdapterContract("memory (one process)", () => ({ nodes: 1, makeAdapter: () => new MemoryAdapter() }));
