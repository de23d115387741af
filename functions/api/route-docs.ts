/**
 * What the OpenAPI document (./openapi.ts) says of each route beyond ROUTES: the zod schemas its
 * handler validates its body and query with, and what it answers. Routes do not declare their
 * answers, so this table names them: a model of core/model.ts where the route answers that very
 * object, else a generic JSON object.
 */
import { z } from 'zod';
import { AuditQuery } from '#core/audit.ts';
import {
  CreateGroupBody,
  CreateTokenBody,
  CreateUserBody,
  SetQuotaBody,
  TokenListQuery,
  UpdateUserBody,
} from '#core/contracts/accounts.ts';
import {
  BackupConfigBody,
  BackupRequestBody,
  ChmodBody,
  ChownBody,
  CreateDatastoreBody,
  CreateHostBody,
  CreateJobBody,
  CreateScheduleBody,
  EnrollHostBody,
  ExecutionListQuery,
  HostKeyBody,
  ImageListQuery,
  InventoryBody,
  RegisterHostBody,
  RestoreRequestBody,
  UpdateDatastoreBody,
  UpdateHostBody,
  UpdateJobBody,
  VmListQuery,
} from '#core/contracts/api.ts';
import {
  BackupJob,
  CapacitySample,
  Datastore,
  Drill,
  Execution,
  Host,
  Image,
  ScheduledAction,
  Vm,
} from '#core/model.ts';
import { CapacityQuery } from './routes/datastores.ts';
import { DownloadRequestBody } from './routes/downloads.ts';
import { DrillListQuery } from './routes/drills.ts';
import { VerifyRequestBody } from './routes/images.ts';

/** The schemas the document names (`#/components/schemas/<name>`): request bodies, queries, models. */
export const SCHEMAS = {
  CreateHostBody,
  EnrollHostBody,
  RegisterHostBody,
  UpdateHostBody,
  InventoryBody,
  HostKeyBody,
  VmListQuery,
  BackupConfigBody,
  BackupRequestBody,
  ChownBody,
  ChmodBody,
  CreateDatastoreBody,
  UpdateDatastoreBody,
  CapacityQuery,
  // `type` is read (and checked) by the route before ImageListQuery sees the rest.
  ImageListQuery: ImageListQuery.extend({ type: z.literal('backup').optional() }),
  RestoreRequestBody,
  VerifyRequestBody,
  DownloadRequestBody,
  DrillListQuery,
  ExecutionListQuery,
  CreateScheduleBody,
  CreateJobBody,
  UpdateJobBody,
  CreateUserBody,
  UpdateUserBody,
  CreateGroupBody,
  SetQuotaBody,
  CreateTokenBody,
  TokenListQuery,
  AuditQuery,
  Host,
  Vm,
  Datastore,
  // The capacity route answers samples without their key and expiry.
  CapacitySample: CapacitySample.omit({ id: true, expiresAt: true }),
  Image,
  // What the image routes answer: the image and where each stored file can be downloaded from.
  ImageView: Image.extend({ downloadUrls: z.array(z.string()) }),
  Execution,
  Drill,
  ScheduledAction,
  BackupJob,
} as const;
export type SchemaName = keyof typeof SCHEMAS;

/**
 * A success answer: a named model, a list of them (`{ items: [...] }`), a generic JSON object
 * (`object`; the route's shape is not a model), a list of generic objects, or no body (204).
 */
export type Answer = SchemaName | `${SchemaName}[]` | 'object' | 'object[]' | 'none';

/** What the document says of a route beyond its method, path and way in. */
export interface RouteDoc {
  summary: string;
  body?: SchemaName;
  query?: SchemaName;
  /** Success answers by status. */
  ok: Partial<Record<200 | 201 | 202 | 204, Answer>>;
}

const doc = (
  summary: string,
  ok: RouteDoc['ok'],
  input: Pick<RouteDoc, 'body' | 'query'> = {},
): RouteDoc => ({
  summary,
  ok,
  ...input,
});
const OWNER: RouteDoc['ok'] = { 200: 'object' };

/** Every route of ROUTES, by route key (a test checks there is one per route and no other). */
export const ROUTE_DOCS: Readonly<Record<string, RouteDoc>> = {
  'GET /hosts': doc('List hosts', { 200: 'Host[]' }),
  'POST /hosts': doc('Register a host (admins)', { 201: 'Host' }, { body: 'CreateHostBody' }),
  'POST /hosts/enroll': doc(
    'A one-time enrollment token for a host (admins)',
    { 201: 'object' },
    { body: 'EnrollHostBody' },
  ),
  'POST /hosts/register': doc(
    'A runner registers its host (enrollment token)',
    { 200: 'object', 201: 'object' },
    { body: 'RegisterHostBody' },
  ),
  'GET /hosts/{id}': doc('Show a host', { 200: 'Host' }),
  'PATCH /hosts/{id}': doc('Change a host (admins)', { 200: 'Host' }, { body: 'UpdateHostBody' }),
  'DELETE /hosts/{id}': doc('Delete a host (admins)', { 204: 'none' }),
  'PUT /hosts/{id}/inventory': doc(
    "A host's runner reports its domains",
    { 200: 'object' },
    { body: 'InventoryBody' },
  ),
  'GET /vms': doc('List the VMs the caller may use', { 200: 'Vm[]' }, { query: 'VmListQuery' }),
  'GET /vms/{id}': doc('Show a VM', { 200: 'Vm' }),
  'DELETE /vms/{id}': doc('Forget a VM (not its domain)', { 204: 'none' }),
  'GET /vms/{id}/backup-config': doc("A VM's BACKUP_CONFIG", { 200: 'object' }),
  'PUT /vms/{id}/backup-config': doc(
    "Change a VM's BACKUP_CONFIG",
    { 200: 'object' },
    { body: 'BackupConfigBody' },
  ),
  'POST /vms/{id}/backup': doc('Back up a VM now', { 202: 'Execution' }, { body: 'BackupRequestBody' }),
  'PUT /vms/{id}/owner': doc('Change the owner or group of a VM', OWNER, { body: 'ChownBody' }),
  'PUT /vms/{id}/permissions': doc('Change the permissions of a VM', OWNER, { body: 'ChmodBody' }),
  'GET /datastores': doc('List the datastores the caller may use', { 200: 'Datastore[]' }),
  'POST /datastores': doc(
    'Create a datastore (admins)',
    { 201: 'Datastore' },
    { body: 'CreateDatastoreBody' },
  ),
  'GET /datastores/{id}': doc('Show a datastore (secret attributes by name only)', { 200: 'Datastore' }),
  'PATCH /datastores/{id}': doc(
    'Change a datastore (admins)',
    { 200: 'Datastore' },
    { body: 'UpdateDatastoreBody' },
  ),
  'DELETE /datastores/{id}': doc('Delete a datastore (admins)', { 204: 'none' }),
  'PUT /datastores/{id}/owner': doc('Change the owner or group of a datastore (admins)', OWNER, {
    body: 'ChownBody',
  }),
  'PUT /datastores/{id}/permissions': doc('Change the permissions of a datastore (admins)', OWNER, {
    body: 'ChmodBody',
  }),
  'POST /datastores/{id}/monitor': doc("Measure a datastore's capacity", {
    200: 'Execution',
    202: 'Execution',
  }),
  'POST /datastores/{id}/import': doc(
    'Rebuild the images a datastore holds that the catalog does not know (admins)',
    { 202: 'Execution' },
  ),
  'GET /datastores/{id}/capacity': doc(
    "A datastore's capacity samples, oldest first",
    { 200: 'CapacitySample[]' },
    { query: 'CapacityQuery' },
  ),
  'GET /images': doc(
    'List the images the caller may use',
    { 200: 'ImageView[]' },
    { query: 'ImageListQuery' },
  ),
  'GET /images/{id}': doc('Show an image with its download URLs', { 200: 'ImageView' }),
  'DELETE /images/{id}': doc('Delete an image (202: its data removed by an execution)', {
    202: 'Execution',
    204: 'none',
  }),
  'POST /images/{id}/restore': doc('Restore an image', { 202: 'Execution' }, { body: 'RestoreRequestBody' }),
  'POST /images/{id}/verify': doc(
    'Read every stored backup of an image back against its recorded sha256 (one execution each); with restore: a drill (restore, check, start without NICs, remove)',
    { 202: 'object' },
    { body: 'VerifyRequestBody' },
  ),
  'GET /drills': doc(
    'List the restore drills of images the caller may use, newest first',
    { 200: 'Drill[]' },
    { query: 'DrillListQuery' },
  ),
  'GET /drills/{id}': doc('Show a restore drill report', { 200: 'Drill' }),
  'PUT /images/{id}/owner': doc('Change the owner or group of an image', OWNER, { body: 'ChownBody' }),
  'PUT /images/{id}/permissions': doc('Change the permissions of an image', OWNER, { body: 'ChmodBody' }),
  'POST /downloads': doc(
    'Copy one file of a backup to a host',
    { 202: 'Execution' },
    { body: 'DownloadRequestBody' },
  ),
  'GET /executions': doc(
    "List executions (the caller's own; admins: all)",
    { 200: 'Execution[]' },
    { query: 'ExecutionListQuery' },
  ),
  'GET /executions/{id}': doc('Show an execution with its progress', { 200: 'Execution' }),
  'POST /executions/{id}/cancel': doc(
    'Cancel an execution: it ends ABORTED, everything it held released (409 once ended)',
    {
      200: 'Execution',
    },
  ),
  'GET /config': doc('The limits of this control plane', { 200: 'object' }),
  'GET /vms/{id}/schedules': doc("A VM's scheduled backups", { 200: 'ScheduledAction[]' }),
  'POST /vms/{id}/schedules': doc(
    'Schedule backups of a VM',
    { 201: 'ScheduledAction' },
    { body: 'CreateScheduleBody' },
  ),
  'DELETE /vms/{id}/schedules/{schedId}': doc("Delete a VM's scheduled backup", { 204: 'none' }),
  'GET /jobs': doc('List the backup jobs the caller may use', { 200: 'BackupJob[]' }),
  'POST /jobs': doc('Create a backup job', { 201: 'BackupJob' }, { body: 'CreateJobBody' }),
  'GET /jobs/{id}': doc('Show a backup job', { 200: 'BackupJob' }),
  'PATCH /jobs/{id}': doc('Change a backup job', { 200: 'BackupJob' }, { body: 'UpdateJobBody' }),
  'DELETE /jobs/{id}': doc('Delete a backup job', { 204: 'none' }),
  'PUT /jobs/{id}/owner': doc('Change the owner or group of a backup job', OWNER, { body: 'ChownBody' }),
  'PUT /jobs/{id}/permissions': doc('Change the permissions of a backup job', OWNER, { body: 'ChmodBody' }),
  'POST /jobs/{id}/backup': doc('Run a backup job now', { 202: 'object' }),
  'POST /jobs/{id}/retry': doc("Back up a job's failed VMs again", { 202: 'object' }),
  'GET /jobs/{id}/schedules': doc("A backup job's schedules", { 200: 'ScheduledAction[]' }),
  'POST /jobs/{id}/schedules': doc(
    'Schedule runs of a backup job',
    { 201: 'ScheduledAction' },
    { body: 'CreateScheduleBody' },
  ),
  'DELETE /jobs/{id}/schedules/{schedId}': doc("Delete a backup job's schedule", { 204: 'none' }),
  'GET /datastores/{id}/schedules': doc("A datastore's scheduled verifications", {
    200: 'ScheduledAction[]',
  }),
  'POST /datastores/{id}/schedules': doc(
    'Schedule verifications of every READY image of a datastore (action verify)',
    { 201: 'ScheduledAction' },
    { body: 'CreateScheduleBody' },
  ),
  'DELETE /datastores/{id}/schedules/{schedId}': doc("Delete a datastore's schedule", { 204: 'none' }),
  'GET /me': doc('The caller: name, group, admin (never a token nor its hash)', { 200: 'object' }),
  'GET /users': doc('List users (admins)', { 200: 'object[]' }),
  'POST /users': doc(
    'Create a user and its first token, shown once (admins)',
    { 201: 'object' },
    { body: 'CreateUserBody' },
  ),
  'GET /users/{name}': doc('Show a user', { 200: 'object' }),
  'PATCH /users/{name}': doc("Change a user's group (admins)", { 200: 'object' }, { body: 'UpdateUserBody' }),
  'DELETE /users/{name}': doc('Delete a user (admins)', { 204: 'none' }),
  'GET /groups': doc('List groups (admins)', { 200: 'object[]' }),
  'POST /groups': doc('Create a group (admins)', { 201: 'object' }, { body: 'CreateGroupBody' }),
  'GET /groups/{name}': doc('Show a group (admins)', { 200: 'object' }),
  'DELETE /groups/{name}': doc('Delete a group (admins)', { 204: 'none' }),
  'GET /users/{name}/quota': doc("A user's datastore quotas and usage", { 200: 'object' }),
  'PUT /users/{name}/quota': doc(
    "Set a user's datastore quota (admins)",
    { 200: 'object' },
    { body: 'SetQuotaBody' },
  ),
  'GET /groups/{name}/quota': doc("A group's datastore quotas and usage", { 200: 'object' }),
  'PUT /groups/{name}/quota': doc(
    "Set a group's datastore quota (admins)",
    { 200: 'object' },
    { body: 'SetQuotaBody' },
  ),
  'GET /tokens': doc(
    "The caller's API tokens (never a token itself)",
    { 200: 'object[]' },
    { query: 'TokenListQuery' },
  ),
  'POST /tokens': doc('Create an API token, shown once', { 201: 'object' }, { body: 'CreateTokenBody' }),
  'DELETE /tokens/{tokenId}': doc('Revoke an API token', { 200: 'object' }),
  'GET /audit': doc('The audit trail, newest first (admins)', { 200: 'object' }, { query: 'AuditQuery' }),
  'GET /stats': doc(
    'Backups succeeded and failed (24 h, 7 days), datastores free bytes, missed backups, verify failures: over what the caller may use',
    { 200: 'object' },
  ),
  'GET /openapi.json': doc('This document', { 200: 'object' }),
  'GET /runner/hosts/{id}': doc('A runner reads its host (IAM)', { 200: 'Host' }),
  'PUT /runner/hosts/{id}/inventory': doc(
    "A runner reports its host's domains (IAM)",
    { 200: 'object' },
    { body: 'InventoryBody' },
  ),
  'PUT /runner/hosts/{id}/key': doc(
    "A runner registers its host's public key (IAM)",
    { 200: 'Host' },
    { body: 'HostKeyBody' },
  ),
};
