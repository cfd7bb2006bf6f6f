/**
 * The default adapter: one process, no cluster. Every cluster-wide view is the local view.
 *
 * @module
 */
import type { ClientId, RoomName } from "../types.js";
import type { Adapter, AdapterHost, ClusterBroadcast, DisconnectOrder, MemberInfo, NodeInfo } from "./adapter.js";

/**
 * The single-process {@link Adapter}: nothing leaves the process, so publishing is free and the
 * room views come straight from the hub.
 */
export class MemoryAdapter implements Adapter {
  #host: AdapterHost | undefined;

  async start(host: AdapterHost): Promise<void> {
    this.#host = host;
  }

  publish(_broadcast: ClusterBroadcast): void {}

  publishToClient(_clientId: ClientId, _type: string, _json: string): void {}

  publishToUser(_userId: string, _type: string, _json: string): void {}

  disconnect(_order: DisconnectOrder): void {}

  roomCreated(_room: RoomName): void {}

  roomDeleted(_room: RoomName): void {}

  memberJoined(_room: RoomName, _member: MemberInfo): void {}

  memberLeft(_room: RoomName, _member: MemberInfo): void {}

  async roomMembers(room: RoomName): Promise<MemberInfo[]> {
    return this.#requireHost().localMembers(room);
  }

  async roomSize(room: RoomName): Promise<number> {
    return this.#requireHost().localMembers(room).length;
  }

  async nodes(): Promise<NodeInfo[]> {
    const host = this.#requireHost();
    return [{ nodeId: host.nodeId, clients: host.localClientCount(), lastSeen: new Date() }];
  }

  async close(): Promise<void> {}

  #requireHost(): AdapterHost {
    if (!this.#host) throw new Error("conduit-ws: MemoryAdapter used before start()");
    return this.#host;
  }
}
