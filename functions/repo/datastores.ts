/** Datastores table. Records never hold secret values, only `secretAttributes` names. */
import { Datastore } from '#core/model.ts';
import { Table } from './table.ts';

/** The datastores repository (`Datastore 100 does not exist`). */
export const datastores = new Table('datastores', Datastore, 'Datastore');
