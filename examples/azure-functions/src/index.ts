/**
 * The Azure Functions entry point (`main` in package.json, built to dist/index.js): one Switchyard,
 * configured from App Settings, behind every function.
 */
// @azure/functions is CommonJS: a default import works under Node's ESM loader, named ones may not.
import functions from '@azure/functions';
import { createDashboardFunction, registerDashboard } from './dashboard.js';
import { createFunctionHandlers } from './handlers.js';
import { registerFunctions } from './register.js';

export const handlers = createFunctionHandlers();
registerFunctions(functions.app, handlers);
registerDashboard(functions.app, createDashboardFunction(handlers.host));
