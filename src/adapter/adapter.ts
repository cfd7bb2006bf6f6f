/**
 * The cluster seam: everything the hub needs from the world outside its process. The default
 * {@link MemoryAdapter} serves one process; the Redis adapter (`@conduit/websocket/redis`) carries
 * the same calls across processes and machines. Both pass one contract test suite.
 *
 * The hub always delivers to its own clients itself; an adapter only carries messages to and from
 * other nodes, and answers the questions that need a cluster-wide view.
 *
 * @module
 */
import type { ClientId, RoomName } from "../types.js";

/** One member of a room, as the `presence` reply lists it. */
export interface MemberInfo {
  /** The member's client id. */
  clientId: ClientId;
  /** The member's user id, null when anonymous. */
  userId: string | null;
}

/** A live node of the cluster. */
export interface NodeInfo {
  /** The node's id (random per process start). */
  nodeId: string;
  /** Clients connected to that node when it last reported. */
  clients: number;
  /** When the node last reported. */
  lastSeen: Date;
}

/** A broadcast on its way between nodes: serialised once by the node that published it. */
export interface ClusterBroadcast {
  /** The target room, or undefined for every client. */
  room: RoomName | undefined;
  /** A client that must not receive it (the sender of a presence event), if any. */
  except: ClientId | undefined;
  /** The message type, for metrics on the receiving node. */
  type: string;
  /** The serialised message. */
  json: string;
  /** Whether slow clients may skip it. */
  droppable: boolean;
}

/** Which connections a {@link Adapter.disconnect} closes, and how. */
export interface DisconnectOrder {
  /** Every connection of this user, or the one client with this id. */
  target: { userId: string } | { clientId: ClientId };
  /** The close code sent to each connection. */
  code: number;
  /** The close reason sent to each connection. */
  reason: string;
}

/** What the hub offers its adapter. */
export interface AdapterHost {
  /** This node's id. */
  readonly nodeId: string;
  /** Delivers a broadcast that another node published to this node's clients. */
  deliver(broadcast: ClusterBroadcast): void;
  /**
   * Announces a presence event about a member this adapter speaks for (a dead node's member, or this
   * node's own after another node removed it): to this node's members of the room, under this node's
   * `presenceEventsMaxMembers`, and published to the other nodes, whose own limits apply there. The
   * member itself is skipped.
   */
  announce(type: "member_joined" | "member_left", room: RoomName, member: MemberInfo): void;
  /** Delivers a message another node addressed to one of this node's clients; false if unknown here. */
  deliverToClient(clientId: ClientId, type: string, json: string): boolean;
  /** Delivers a message another node addressed to a user to that user's connections on this node; returns how many. */
  deliverToUser(userId: string, type: string, json: string): number;
  /** Closes this node's connections that another node's {@link Adapter.disconnect} names; returns how many. */
  disconnectLocal(order: DisconnectOrder): number;
  /** This node's members of a room. */
  localMembers(room: RoomName): MemberInfo[];
  /** The rooms that have at least one member on this node. */
  localRooms(): Iterable<RoomName>;
  /** How many clients this node holds. */
  localClientCount(): number;
}

/**
 * Connects a hub to other hubs. Implementations declare `implements Adapter` and run the shared
 * contract tests in `test/adapter-contract.ts`.
 */
export interface Adapter {
  /** Called once before the server accepts connections. Rejects if the backend cannot be reached. */
  start(host: AdapterHost): Promise<void>;
  /** Carries a broadcast to the other nodes (the local delivery is already done). */
  publish(broadcast: ClusterBroadcast): void;
  /** Carries a message to a client that is not on this node. */
  publishToClient(clientId: ClientId, type: string, json: string): void;
  /** Carries a message to every connection of a user on the other nodes (this node's are done). */
  publishToUser(userId: string, type: string, json: string): void;
  /** Carries an order to close a user's or a client's connections to the other nodes (this node's are done). */
  disconnect(order: DisconnectOrder): void;
  /**
   * The first local member joined `room`: start receiving that room's broadcasts. A promise makes the
   * `join_room` reply wait until the subscription is in place, so the joiner misses nothing sent after.
   */
  roomCreated(room: RoomName): void | Promise<void>;
  /** The last local member left `room`: stop receiving its broadcasts. */
  roomDeleted(room: RoomName): void;
  /**
   * A local client joined a room (for cluster-wide member lists). A promise makes the `join_room`
   * reply wait until other nodes can see the member.
   */
  memberJoined(room: RoomName, member: MemberInfo): void | Promise<void>;
  /** A local client left a room. */
  memberLeft(room: RoomName, member: MemberInfo): void;
  /** Members of `room` on every node. */
  roomMembers(room: RoomName): Promise<MemberInfo[]>;
  /** Member count of `room` on every node. */
  roomSize(room: RoomName): Promise<number>;
  /** The live nodes, this one included. */
  nodes(): Promise<NodeInfo[]>;
  /** Stops receiving and releases connections. */
  close(): Promise<void>;
}
