-- Students and day rows are now written from JSON arrays, taken apart by
-- position (store.py); the composite their counters were read into is unused.
DROP TYPE counters;
