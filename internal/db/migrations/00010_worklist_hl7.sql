-- +goose Up
-- Deeper checks of a device (issue 19): the modality worklist a broker or
-- RIS answers, and an HL7 v2 interface engine's acknowledgements.

-- A DICOM node's worklist check: {"modality": "CT", "station_ae": "CT01",
-- "expect_items": true}; NULL means no worklist query.
ALTER TABLE devices ADD COLUMN dicom_worklist jsonb;
ALTER TABLE devices ADD COLUMN hl7_host text;
ALTER TABLE devices ADD COLUMN hl7_port integer CHECK (hl7_port BETWEEN 1 AND 65535);
ALTER TABLE devices ADD COLUMN hl7_sending_app text;
ALTER TABLE devices ADD COLUMN hl7_receiving_app text;
ALTER TABLE devices ADD COLUMN hl7_message_type text;

-- Whether the device's worklist was failing at its last answered probe, so
-- that worklist_failing and worklist_restored are published once per
-- change, across restarts.
ALTER TABLE device_states ADD COLUMN worklist_failing boolean NOT NULL DEFAULT false;

ALTER TABLE device_events DROP CONSTRAINT device_events_kind_check;
ALTER TABLE device_events ADD CONSTRAINT device_events_kind_check CHECK (kind IN ('device_down', 'device_up', 'site_down', 'site_up',
    'flapping_started', 'flapping_stopped', 'misconfigured', 'rebooted', 'worklist_failing', 'worklist_restored'));

-- +goose Down
DELETE FROM device_events WHERE kind IN ('worklist_failing', 'worklist_restored');
ALTER TABLE device_events DROP CONSTRAINT device_events_kind_check;
ALTER TABLE device_events ADD CONSTRAINT device_events_kind_check CHECK (kind IN ('device_down', 'device_up', 'site_down', 'site_up',
    'flapping_started', 'flapping_stopped', 'misconfigured', 'rebooted'));
ALTER TABLE device_states DROP COLUMN worklist_failing;
ALTER TABLE devices DROP COLUMN dicom_worklist, DROP COLUMN hl7_host, DROP COLUMN hl7_port, DROP COLUMN hl7_sending_app,
    DROP COLUMN hl7_receiving_app, DROP COLUMN hl7_message_type;
