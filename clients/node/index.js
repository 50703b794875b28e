'use strict';
// zsaga for Node.js: a client that submits and follows sagas, and a worker
// library that runs a system's operations exactly once behind the barrier,
// with the same tables and rules as the C runtime.
const { Client } = require('./lib/client');
const { Worker, StepContext } = require('./lib/worker');
const errors = require('./lib/errors');
const db = require('./lib/db');

module.exports = { Client, Worker, StepContext, ...errors, DbError: db.DbError, version: '0.1.0' };
