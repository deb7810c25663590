#!/usr/bin/env node
/**
 * `tsvmm-qemu`: the same as `tsvmm qemu`, under a name a harness can be
 * pointed at in place of qemu-system-x86_64.
 */
import { qemuCommand } from './qemu/qemu-command.js';

process.exitCode = await qemuCommand(process.argv.slice(2));
