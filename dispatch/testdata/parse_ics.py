"""Reads an iCalendar object on stdin with Debian's python3-icalendar and
prints what a calendar client takes from it, as JSON: the method, each
event's UID, SEQUENCE, STATUS, LOCATION, and DTSTART/DTEND with their TZID
and as UTC instants. A malformed object fails here, not in the Go test."""
import datetime
import json
import sys

import icalendar

def attendees(ev):
    a = ev.get("ATTENDEE")
    if a is None:
        return []
    return a if isinstance(a, list) else [a]


cal = icalendar.Calendar.from_ical(sys.stdin.buffer.read())
out = {"method": str(cal.get("METHOD", "")), "version": str(cal.get("VERSION", "")),
       "timezones": [str(tz.get("TZID")) for tz in cal.walk("VTIMEZONE")], "events": []}
for ev in cal.walk("VEVENT"):
    start, end = ev.get("DTSTART"), ev.get("DTEND")
    out["events"].append({
        "uid": str(ev.get("UID")),
        "sequence": int(ev.get("SEQUENCE", 0)),
        "status": str(ev.get("STATUS", "")),
        "location": str(ev.get("LOCATION", "")),
        "summary": str(ev.get("SUMMARY", "")),
        "url": str(ev.get("URL", "")),
        "tzid": str(start.params.get("TZID", "")),
        "end_tzid": str(end.params.get("TZID", "")),
        "start_local": start.dt.strftime("%Y-%m-%dT%H:%M:%S"),
        "start_utc": start.dt.astimezone(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "end_utc": end.dt.astimezone(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "attendees": [str(a) for a in attendees(ev)],
    })
json.dump(out, sys.stdout)
