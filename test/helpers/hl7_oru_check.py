"""Checks one ORU^R01 of ours with python3-hl7 (hl7.parse), the way an interface engine would read it.

Reads JSON on stdin: {"message": str, "checks": [{"key", "segment", "occurrence", "field", "component",
"expected"}]} where occurrence counts the segments of that name from 1 and component from 1. Each value is read
with Message.extract_field and unescaped with Message.unescape, then compared with "expected". Besides the
listed checks, the message's structure is checked: the ORU_R01 segment order, OBX-1 without gaps, NM values that
are numbers with UCUM units, CWE values with a coding system. Writes {"errors": [...], "checked": n} on stdout."""
import json
import re
import sys

import hl7

ORDER = re.compile(r"^MSH PID ORC OBR (NTE )*(TQ1 )?(OBX )+$")


def value_at(message, segment, occurrence, field, component):
    """The unescaped component; '' where the message has none (python-hl7 raises for a component past a leaf)."""
    try:
        return message.unescape(message.extract_field(segment, occurrence, field, 1, component))
    except (KeyError, IndexError):
        return ""


def main():
    request = json.load(sys.stdin)
    errors = []
    message = hl7.parse(request["message"])
    names = [str(segment[0]) for segment in message]
    if not ORDER.match(" ".join(names) + " "):
        errors.append(f"segment order {' '.join(names)} is not ORU_R01's")
    checked = 0
    for check in request["checks"]:
        if len(message.segments(check["segment"])) < check["occurrence"]:
            errors.append(f"{check['key']}: no {check['segment']} #{check['occurrence']} in the message")
            continue
        value = value_at(message, check["segment"], check["occurrence"], check["field"], check.get("component", 1))
        if value != check["expected"]:
            errors.append(f"{check['key']}: {value!r}, expected {check['expected']!r}")
        checked += 1
    for k, obx in enumerate(message.segments("OBX"), start=1):
        if str(obx[1]) != str(k):
            errors.append(f"OBX #{k}: OBX-1 is {str(obx[1])!r}")
        kind = str(obx[2])
        if kind == "NM":
            try:
                float(str(obx[5]))
            except ValueError:
                errors.append(f"OBX #{k}: NM value {str(obx[5])!r} is not a number")
            if value_at(message, "OBX", k, 6, 3) != "UCUM":
                errors.append(f"OBX #{k}: NM without UCUM units")
        elif kind == "CWE":
            if value_at(message, "OBX", k, 5, 1) == "" or value_at(message, "OBX", k, 5, 3) == "":
                errors.append(f"OBX #{k}: CWE value without code or coding system")
        elif kind != "ST":
            errors.append(f"OBX #{k}: value type {kind!r}")
    json.dump({"errors": errors, "checked": checked}, sys.stdout)


if __name__ == "__main__":
    main()
