/**
 * Validation of a handler's `data` with any Standard Schema library (zod, valibot, arktype).
 *
 * The interface below is the published Standard Schema v1 contract (standardschema.dev), written out
 * here so that the library needs no runtime or type dependency on any schema library.
 *
 * @module
 */

/** The Standard Schema v1 interface that zod, valibot and arktype schemas implement. */
export interface StandardSchemaV1<Input = unknown, Output = Input> {
  /** The Standard Schema properties. */
  readonly "~standard": StandardSchemaV1.Props<Input, Output>;
}

/** Types of the Standard Schema v1 contract. */
export declare namespace StandardSchemaV1 {
  /** The properties every Standard Schema carries under `~standard`. */
  export interface Props<Input = unknown, Output = Input> {
    readonly version: 1;
    readonly vendor: string;
    readonly validate: (value: unknown) => Result<Output> | Promise<Result<Output>>;
    readonly types?: Types<Input, Output> | undefined;
  }
  /** A successful or failed validation. */
  export type Result<Output> = SuccessResult<Output> | FailureResult;
  /** The parsed value. */
  export interface SuccessResult<Output> {
    readonly value: Output;
    readonly issues?: undefined;
  }
  /** What was wrong. */
  export interface FailureResult {
    readonly issues: ReadonlyArray<Issue>;
  }
  /** One problem, with where it was. */
  export interface Issue {
    readonly message: string;
    readonly path?: ReadonlyArray<PropertyKey | PathSegment> | undefined;
  }
  /** A path segment given as an object. */
  export interface PathSegment {
    readonly key: PropertyKey;
  }
  /** Carries the static input and output types. */
  export interface Types<Input = unknown, Output = Input> {
    readonly input: Input;
    readonly output: Output;
  }
  /** The type a schema accepts. */
  export type InferInput<Schema extends StandardSchemaV1> = NonNullable<Schema["~standard"]["types"]>["input"];
  /** The type a schema produces. */
  export type InferOutput<Schema extends StandardSchemaV1> = NonNullable<Schema["~standard"]["types"]>["output"];
}

/**
 * Describes the first issue of a failed validation as `data.field: message`, so the client learns
 * which field was wrong.
 */
export function describeIssues(issues: ReadonlyArray<StandardSchemaV1.Issue>): string {
  const [first] = issues;
  if (first === undefined) return "data: invalid";
  const path = (first.path ?? [])
    .map((segment) => String(typeof segment === "object" && segment !== null ? segment.key : segment))
    .join(".");
  return path ? `data.${path}: ${first.message}` : `data: ${first.message}`;
}
