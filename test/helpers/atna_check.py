"""Checks DICOM Audit Messages against the required content of PS3.15 A.5.1.1 (the audit message schema, RELAX NG
compact), parsing them with expat (a real XML parser, so a malformed document fails here).

Reads a JSON list of XML strings on stdin; writes a JSON list of {"errors": [...], "tree": {...}} on stdout. The
rules below are the schema's, element by element: required elements and attributes, element order, cardinality and
the enumerated attribute values. It is not a full RELAX NG validator (no validator is installed here); it checks what
the schema makes mandatory or enumerates."""
import json
import re
import sys
import xml.etree.ElementTree as ET

DATETIME = re.compile(r"^-?\d{4,}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})?$")


def tree(e):
    return {"tag": e.tag, "attrs": dict(e.attrib), "text": (e.text or "").strip(), "children": [tree(c) for c in e]}


def check(root):
    errors = []

    def err(msg):
        errors.append(msg)

    def need_attr(e, name, where):
        if name not in e.attrib or e.attrib[name] == "":
            err(f"{where}: attribute {name} is required")
            return None
        return e.attrib[name]

    def enum_attr(e, name, values, where, required=False):
        v = e.attrib.get(name)
        if v is None:
            if required:
                err(f"{where}: attribute {name} is required")
            return
        if v not in values:
            err(f"{where}: {name}={v!r} is not one of {values}")

    def coded(e, where):
        need_attr(e, "csd-code", where)
        need_attr(e, "codeSystemName", where)
        need_attr(e, "originalText", where)

    def sequence(e, spec, where):
        """spec: list of (tag or tuple of alternative tags, min, max); children must follow in this order."""
        kids = list(e)
        i = 0
        for tags, lo, hi in spec:
            tags = tags if isinstance(tags, tuple) else (tags,)
            n = 0
            while i < len(kids) and kids[i].tag in tags and (hi is None or n < hi):
                i += 1
                n += 1
            if n < lo:
                err(f"{where}: needs at least {lo} of {'|'.join(tags)} here, has {n}")
        if i < len(kids):
            err(f"{where}: unexpected or out-of-order element {kids[i].tag}")

    if root.tag != "AuditMessage":
        err(f"root is {root.tag}, not AuditMessage")
        return errors
    sequence(root, [("EventIdentification", 1, 1), ("ActiveParticipant", 1, None),
                    ("AuditSourceIdentification", 1, 1), ("ParticipantObjectIdentification", 0, None)], "AuditMessage")

    for ei in root.findall("EventIdentification"):
        w = "EventIdentification"
        dt = need_attr(ei, "EventDateTime", w)
        if dt is not None and not DATETIME.match(dt):
            err(f"{w}: EventDateTime {dt!r} is not an xsd:dateTime")
        enum_attr(ei, "EventOutcomeIndicator", ["0", "4", "8", "12"], w, required=True)
        enum_attr(ei, "EventActionCode", ["C", "R", "U", "D", "E"], w)
        sequence(ei, [("EventID", 1, 1), ("EventTypeCode", 0, None), ("EventOutcomeDescription", 0, 1)], w)
        for c in ei.findall("EventID"):
            coded(c, "EventID")
        for c in ei.findall("EventTypeCode"):
            coded(c, "EventTypeCode")

    for ap in root.findall("ActiveParticipant"):
        w = "ActiveParticipant"
        if "UserID" not in ap.attrib:
            err(f"{w}: attribute UserID is required")
        enum_attr(ap, "UserIsRequestor", ["true", "false", "1", "0"], w, required=True)
        enum_attr(ap, "NetworkAccessPointTypeCode", ["1", "2", "3", "4", "5"], w)
        sequence(ap, [("RoleIDCode", 0, None), ("MediaIdentifier", 0, 1)], w)
        for c in ap.findall("RoleIDCode"):
            coded(c, "RoleIDCode")

    for src in root.findall("AuditSourceIdentification"):
        w = "AuditSourceIdentification"
        need_attr(src, "AuditSourceID", w)
        sequence(src, [("AuditSourceTypeCode", 0, None)], w)
        for c in src.findall("AuditSourceTypeCode"):
            code = need_attr(c, "csd-code", "AuditSourceTypeCode")
            if code is not None and code not in [str(n) for n in range(1, 10)] and "codeSystemName" not in c.attrib:
                err("AuditSourceTypeCode: a code other than 1-9 needs a codeSystemName")

    for po in root.findall("ParticipantObjectIdentification"):
        w = "ParticipantObjectIdentification"
        need_attr(po, "ParticipantObjectID", w)
        enum_attr(po, "ParticipantObjectTypeCode", ["1", "2", "3", "4"], w)
        enum_attr(po, "ParticipantObjectTypeCodeRole", [str(n) for n in range(1, 27)], w)
        enum_attr(po, "ParticipantObjectDataLifeCycle", [str(n) for n in range(1, 16)], w)
        sequence(po, [("ParticipantObjectIDTypeCode", 1, 1),
                      (("ParticipantObjectName", "ParticipantObjectQuery"), 1, 1),
                      ("ParticipantObjectDetail", 0, None), ("ParticipantObjectDescription", 0, None)], w)
        for c in po.findall("ParticipantObjectIDTypeCode"):
            coded(c, "ParticipantObjectIDTypeCode")
        for d in po.findall("ParticipantObjectDetail"):
            need_attr(d, "type", "ParticipantObjectDetail")
            need_attr(d, "value", "ParticipantObjectDetail")
        for desc in po.findall("ParticipantObjectDescription"):
            wd = "ParticipantObjectDescription"
            sequence(desc, [("MPPS", 0, None), ("Accession", 0, None), ("SOPClass", 0, None),
                            ("ParticipantObjectContainsStudy", 0, 1), ("Encrypted", 0, 1), ("Anonymized", 0, 1)], wd)
            for sc in desc.findall("SOPClass"):
                n = need_attr(sc, "NumberOfInstances", "SOPClass")
                if n is not None and not re.match(r"^[+-]?\d+$", n):
                    err(f"SOPClass: NumberOfInstances {n!r} is not an integer")
                sequence(sc, [("Instance", 0, None)], "SOPClass")
                for inst in sc.findall("Instance"):
                    need_attr(inst, "UID", "Instance")
    return errors


def main():
    out = []
    for doc in json.load(sys.stdin):
        try:
            root = ET.fromstring(doc.encode("utf-8"))
        except ET.ParseError as e:
            out.append({"errors": [f"not well-formed XML: {e}"], "tree": None})
            continue
        out.append({"errors": check(root), "tree": tree(root)})
    json.dump(out, sys.stdout)


main()
