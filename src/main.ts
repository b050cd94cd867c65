#!/usr/bin/env bun
/** The `rewire` executable: the agent and its CLI (see `rewire help`). */
import { main } from './cli/main.ts';

process.exit(await main(process.argv.slice(2)));
