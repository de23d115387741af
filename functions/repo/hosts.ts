/** Hosts table: one record per hypervisor running a Lifeboat runner. */
import { Host } from '#core/model.ts';
import { Table } from './table.ts';

/** The hosts repository (`Host 3 does not exist`). */
export const hosts = new Table('hosts', Host, 'Host');
