'use strict';
/**
 * `html-entities` as the bundled Storage client uses it (reference-tasks/bundle.ts puts this file
 * in its place): to decode the message of every error answer, and a 404 for a model that does not
 * exist is one in every task. The package builds its entity tables when it is loaded, about 3% of
 * a small task's CPU in profiles. An entity starts with `&`, so a text without one decodes to
 * itself: the package is loaded only for a text that has one, or for another function.
 */
let real;
const load = () => {
  real ??= require('html-entities');
  return real;
};

exports.decode = (text, options) =>
  typeof text === 'string' && !text.includes('&') ? text : load().decode(text, options);
exports.decodeEntity = (entity, options) => load().decodeEntity(entity, options);
exports.encode = (text, options) => load().encode(text, options);
