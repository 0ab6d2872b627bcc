-- Reverts 0003: every update takes a new rev again, as 0002 made it.
CREATE OR REPLACE FUNCTION "keel_memory_items_bump_rev"() RETURNS trigger
    LANGUAGE plpgsql
AS $$
BEGIN
    NEW.rev := nextval(pg_get_serial_sequence('memory_items', 'rev'));
    RETURN NEW;
END;
$$;
