/** Identifies this software in association negotiation and in the file meta of what we store. */
export const IMPLEMENTATION_CLASS_UID = '2.25.79955855247879596505426310902763441664';
export const IMPLEMENTATION_VERSION_NAME = 'CXR_GATEWAY_01';
