// The demo's validation rules, the same as examples/validator-cpp:
// shapes stay inside the 0..10000 canvas; chat messages are cut to 500
// characters (a modification) and empty ones are rejected.
//
// Messages are the plain objects of @grpc/proto-loader with keepCase and
// oneofs: a Value is {number_value: 3, kind: 'number_value'} and so on.
'use strict';

const CANVAS_SIZE = 10000;
const MAX_MESSAGE_LENGTH = 500; // characters (code points)

// The number `name` has after the fragment: its own value, else the
// object's current one; undefined if none.
function numberAfter(request, fragment, name) {
  const own = (fragment.properties || []).find((p) => p.name === name);
  if (own) return own.value && own.value.kind === 'number_value' ? own.value.number_value : undefined;
  const current = (request.current || []).find((o) => o.uuid === fragment.uuid);
  const prop = current && (current.properties || []).find((p) => p.name === name);
  return prop && prop.value && prop.value.kind === 'number_value' ? prop.value.number_value : undefined;
}

function shapeInsideCanvas(request, fragment) {
  const x = numberAfter(request, fragment, 'x');
  const y = numberAfter(request, fragment, 'y');
  const w = numberAfter(request, fragment, 'width') ?? 0;
  const h = numberAfter(request, fragment, 'height') ?? 0;
  if (w < 0 || h < 0) return false;
  if (x !== undefined && (x < 0 || x + w > CANVAS_SIZE)) return false;
  if (y !== undefined && (y < 0 || y + h > CANVAS_SIZE)) return false;
  return true;
}

// ValidateChangesetRequest -> ValidateChangesetResponse.
function applyDemoRules(request) {
  const response = { verdict: 'ACCEPT', rejections: [], modifications: [] };
  (request.fragments || []).forEach((fragment, i) => {
    if (fragment.cls_name === 'Shape' && !shapeInsideCanvas(request, fragment)) {
      response.rejections.push({ fragment: i, message: 'Shape must stay inside the 0..10000 canvas' });
      return;
    }
    if (fragment.cls_name !== 'Message') return;
    const text = (fragment.properties || []).find((p) => p.name === 'text');
    if (!text) return;
    const value = text.value && text.value.kind === 'string_value' ? text.value.string_value : '';
    if (value.trim() === '') {
      response.rejections.push({ fragment: i, message: 'Message text must not be empty' });
      return;
    }
    const chars = Array.from(value);
    if (chars.length > MAX_MESSAGE_LENGTH) {
      response.modifications.push({
        fragment: i,
        properties: [{ name: 'text', value: { string_value: chars.slice(0, MAX_MESSAGE_LENGTH).join('') } }],
      });
    }
  });
  return response;
}

module.exports = { applyDemoRules, CANVAS_SIZE, MAX_MESSAGE_LENGTH };
