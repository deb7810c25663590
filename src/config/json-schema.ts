/**
 * The schemas as JSON Schema (draft 2020-12), for editors and other
 * tools: Firecracker's configuration file, its API bodies by the swagger's
 * definition names, and the library's machine configuration. What JSON
 * cannot express (a byte array, a callback, a file that must exist) shows
 * as an unconstrained value; tsvmm still checks it.
 */
import { z } from 'zod';
import {
  ActionBody, BootSourceBody, ConfigFile, DriveBody, DrivePatch, EntropyBody, LoggerBody, MachineConfigBody, MetricsBody,
  NetworkInterfaceBody, NetworkInterfacePatch, RawBootBody, SerialBody, SnapshotCreateBody, SnapshotLoadBody, VmStateBody, VsockBody,
} from './firecracker-schema.js';
import { MachineConfigSchema } from './machine-schema.js';

export const JSON_SCHEMA_NAMES = ['config-file', 'api', 'machine'] as const;
export type JsonSchemaName = (typeof JSON_SCHEMA_NAMES)[number];

const toJson = (schema: z.ZodType) => z.toJSONSchema(schema, { unrepresentable: 'any', io: 'input' });

const API_BODIES: Record<string, z.ZodType> = {
  BootSource: BootSourceBody, MachineConfiguration: MachineConfigBody, Drive: DriveBody, PartialDrive: DrivePatch,
  NetworkInterface: NetworkInterfaceBody, PartialNetworkInterface: NetworkInterfacePatch, Vsock: VsockBody, EntropyDevice: EntropyBody,
  SerialDevice: SerialBody, Logger: LoggerBody, Metrics: MetricsBody, InstanceActionInfo: ActionBody, Vm: VmStateBody,
  SnapshotCreateParams: SnapshotCreateBody, SnapshotLoadParams: SnapshotLoadBody, TsvmmRawBoot: RawBootBody,
};

export function jsonSchema(name: JsonSchemaName): unknown {
  switch (name) {
    case 'config-file': return toJson(ConfigFile);
    case 'machine': return toJson(MachineConfigSchema);
    case 'api': return { definitions: Object.fromEntries(Object.entries(API_BODIES).map(([key, schema]) => [key, toJson(schema)])) };
  }
}
