// HEC events as senders pretty-print them, and the one line each must become (issue 21, items 1 and 9).

/** An http_requests record as a sender pretty-prints it; the 19-digit timestamp must survive. */
export const PRETTY = '{\n  "RayID": "7c0f1a2b3c4d5e6f",\n  "EdgeStartTimestamp": 1700000000123456789,\n  "ClientRequestHost": "example.com",\n  "ClientRequestURI": "/a b?c=\\"d\\"",\n  "EdgeResponseStatus": 200\n}'
/** The same record as one line: only the whitespace between tokens gone, every other byte as sent. */
export const ONE_LINE = '{"RayID":"7c0f1a2b3c4d5e6f","EdgeStartTimestamp":1700000000123456789,"ClientRequestHost":"example.com","ClientRequestURI":"/a b?c=\\"d\\"","EdgeResponseStatus":200}'
/** A string event holding a pretty-printed record (HEC takes the string's value as the record). */
export const PRETTY_STRING = JSON.stringify('{\n\t"RayID": "s1",\n\t"EdgeStartTimestamp": 1700000001000000000\r\n}')
export const STRING_ONE_LINE = '{"RayID":"s1","EdgeStartTimestamp":1700000001000000000}'
export const PLAIN = '{"RayID":"p1", "EdgeStartTimestamp":1700000002000000000}'
