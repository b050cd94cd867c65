/**
 * The command table of `rewire`. A new command is one file in this folder exporting a
 * `Command`, and one entry in the list below (the order of `rewire help`).
 */
import type { Command } from '../command.ts';
import { agent } from './agent.ts';
import { cancel } from './cancel.ts';
import { capture } from './capture.ts';
import { connections } from './connections.ts';
import { exec } from './exec.ts';
import { helpCommand } from './help.ts';
import { hosts } from './hosts.ts';
import { peers } from './peers.ts';
import { placement } from './placement.ts';
import { restore } from './restore.ts';
import { restores } from './restores.ts';
import { status } from './status.ts';
import { version } from './version.ts';

export const commands: Command[] = [
  agent,
  status,
  peers,
  connections,
  hosts,
  placement,
  capture,
  restore,
  restores,
  cancel,
  exec,
  version,
  helpCommand(() => commands),
];
