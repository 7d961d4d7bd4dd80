"""A real HL7 peer for the MLLP sender's tests: Debian's python3-hl7 (0.4.5) MLLP server.

Run with /usr/bin/python3 (the python3 on PATH cannot see Debian's modules):

    hl7_listener.py --port N [--host 127.0.0.1] [--responses aa,ae,...]
                    [--tls-cert CERT --tls-key KEY [--tls-client-ca CA]]

--tls-cert/--tls-key: MLLP over TLS (Python's ssl wrapping the same server; TLS 1.2 minimum); --tls-client-ca:
also require a client certificate signed by that CA (mutual TLS). Each message record then carries
"peerSubject": the client certificate's subject CN, or null when the client sent none.

--responses lists what to do with the 1st, 2nd, ... message received (over all connections); the last entry
repeats. Entries:
    aa ae ar ca ce cr   answer with that MSA-1 (non-AA answers carry an MSA-3 text; AE also an ERR segment)
    ae-phi ar-phi       AE (ERR-3 207, retryable) or AR whose MSA-3 and ERR-8 texts name a patient, as real RIS
                        answers often do: PATIENT_TEXT below (for tests that such text stays out of logs)
    aa-lf               answer AA with \\n instead of \\r between the ACK's segments
    aa-close            answer AA, then close the connection (a RIS that drops idle connections)
    wrong-id            answer AA with an MSA-2 that is not the message's MSH-10
    silent              never answer (keep reading)
    close               close the connection without answering

Prints JSON lines on stdout, flushed before any answer goes out:
    {"event": "ready", "port": N}
    {"event": "message", "index": i, "connection": c, "controlId": ..., "raw": ..., "segments": [...],
     "response": ...}
where segments[k] = [name, field1, field2, ...] and each field is the list of its components as python-hl7
parses them, unescaped with python-hl7's Message.unescape (MSH-1 and MSH-2 verbatim).
"""

import argparse
import asyncio
import itertools
import json
import ssl
import sys

import hl7
import hl7.mllp

ACK_CODES = {"aa", "ae", "ar", "ca", "ce", "cr"}
RESPONSES = ACK_CODES | {"aa-lf", "aa-close", "wrong-id", "silent", "close", "ae-phi", "ar-phi"}
# MSA-3 is a plain ST field: the name is written with a space, as a RIS would put it in free text.
PATIENT_TEXT = "no visit for DOE JANE MRN 4711-0815"
# ERR-8 (user message) quotes the name in HL7 form, escaped (\S\ is the component separator).
PATIENT_ERR_TEXT = "patient DOE\\S\\JANE unknown"



def emit(record):
    sys.stdout.write(json.dumps(record) + "\n")
    sys.stdout.flush()


def components(message, field, raw):
    if raw:
        return [str(field)]
    if len(field) == 0:
        return [""]
    first = field[0]
    if isinstance(first, str):
        return [message.unescape(first)]
    return [message.unescape(str(component)) for component in first]


def describe(message):
    segments = []
    for segment in message:
        name = str(segment[0])
        fields = [name]
        for index in range(1, len(segment)):
            fields.append(components(message, segment[index], name == "MSH" and index <= 2))
        segments.append(fields)
    return segments


def make_ack(message, response, control_id):
    if message is None:
        # Unparseable input: answer AE by hand so the sender still hears something.
        return "MSH|^~\\&|LISTENER|TEST|||20240101000000||ACK|ERR1|P|2.5.1\rMSA|AE|%s|unparseable\r" % control_id
    if response in ("ae-phi", "ar-phi"):
        code = response[:2].upper()
        ack = message.create_ack(code)
        text = str(ack)
        if not text.endswith("\r"):
            text += "\r"
        text = text.replace("\rMSA|%s|%s" % (code, control_id), "\rMSA|%s|%s|%s" % (code, control_id, PATIENT_TEXT))
        if code == "AE":
            text += "ERR|||207^Application internal error^HL70357|E||||%s\r" % PATIENT_ERR_TEXT
        return text
    code = "AA" if response in ("aa-lf", "aa-close", "wrong-id") else response.upper()
    ack = message.create_ack(code)
    if response == "wrong-id":
        ack.segment("MSA").assign_field("WRONG-" + control_id, 2)
    if code != "AA":
        ack.segment("MSA").assign_field("test listener answers " + code, 3)
    text = str(ack)
    if not text.endswith("\r"):
        text += "\r"
    if code == "AE":
        text += "ERR|||207^Application internal error^HL70357|E||||patient unknown to the RIS\r"
    if response == "aa-lf":
        text = text.replace("\r", "\n")
    return text


async def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--responses", default="aa")
    parser.add_argument("--tls-cert")
    parser.add_argument("--tls-key")
    parser.add_argument("--tls-client-ca")
    args = parser.parse_args()
    context = None
    if args.tls_cert:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        context.load_cert_chain(args.tls_cert, args.tls_key)
        if args.tls_client_ca:
            context.verify_mode = ssl.CERT_REQUIRED
            context.load_verify_locations(args.tls_client_ca)
    plan = [r.strip() for r in args.responses.split(",") if r.strip()]
    unknown = [r for r in plan if r not in RESPONSES]
    if not plan or unknown:
        sys.stderr.write("unknown responses: %s\n" % unknown)
        sys.exit(2)

    counter = itertools.count()
    connections = itertools.count(1)

    async def handle(reader, writer):
        connection = next(connections)
        try:
            while True:
                try:
                    block = await reader.readblock()
                except (asyncio.IncompleteReadError, ConnectionError):
                    break
                index = next(counter)
                response = plan[min(index, len(plan) - 1)]
                text = block.decode("utf-8", "replace")
                record = {"event": "message", "index": index, "connection": connection, "raw": text, "response": response}
                message = None
                control_id = ""
                try:
                    message = hl7.parse(text)
                    control_id = message.extract_field("MSH", 1, 10)
                    record["segments"] = describe(message)
                except Exception as error:  # the handler must not throw: python-hl7 would then send nothing
                    record["parseError"] = repr(error)
                record["controlId"] = control_id
                if context is not None:
                    peer = writer.get_extra_info("peercert")
                    subject = dict(item for rdn in peer.get("subject", ()) for item in rdn) if peer else {}
                    record["peerSubject"] = subject.get("commonName")
                emit(record)
                if response == "silent":
                    continue
                if response == "close":
                    break
                writer.writeblock(make_ack(message, response, control_id).encode("utf-8"))
                await writer.drain()
                if response == "aa-close":
                    break
        except Exception as error:
            emit({"event": "error", "connection": connection, "error": repr(error)})
        finally:
            writer.close()

    server = await hl7.mllp.start_hl7_server(
        handle, host=args.host, port=args.port, encoding="utf-8", ssl=context
    )
    emit({"event": "ready", "port": args.port})
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(main())
