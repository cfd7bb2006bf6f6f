/**
 * A load-generator process: holds connections and runs the harness's commands against them, one at
 * a time, answering each over IPC. It exits as soon as the harness is gone.
 *
 * @module
 */
import type { LoadCommand, Reply, Request } from "../shared/messages.js";
import { attack, bystander } from "./noisy.js";
import { publish } from "./publish.js";
import { connect, echo, fanout, join, listen, reset, throughput } from "./routines.js";

function run(command: LoadCommand): Promise<unknown> {
  switch (command.op) {
    case "connect":
      return connect(command);
    case "join":
      return join(command.room);
    case "fanout":
      return fanout(command);
    case "echo":
      return echo(command);
    case "throughput":
      return throughput(command);
    case "bystander":
      return bystander(command);
    case "attack":
      return attack(command);
    case "listen":
      return listen(command);
    case "publish":
      return publish(command);
    case "reset":
      return reset();
  }
}

process.on("message", (request: Request<LoadCommand>) => {
  run(request.command).then(
    (result) => process.send?.({ seq: request.seq, ok: true, result } satisfies Reply),
    (error: unknown) =>
      process.send?.({ seq: request.seq, ok: false, error: error instanceof Error ? error.message : String(error) } satisfies Reply),
  );
});
process.on("disconnect", () => process.exit(0));
process.send?.({ ready: true });
