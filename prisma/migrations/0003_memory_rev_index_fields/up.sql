-- 0003_memory_rev_index_fields: an update takes a new rev only when it
-- changes what a vector index holds (the vector or a filter field). Reads
-- that touch last_accessed_at, and feedback from approvals, no longer make
-- every process's index re-read the row and its embedding.
CREATE OR REPLACE FUNCTION "keel_memory_items_bump_rev"() RETURNS trigger
    LANGUAGE plpgsql
AS $$
BEGIN
    IF NEW.embedding IS DISTINCT FROM OLD.embedding
       OR NEW.kind IS DISTINCT FROM OLD.kind
       OR NEW.subject IS DISTINCT FROM OLD.subject
       OR NEW.occurred_at IS DISTINCT FROM OLD.occurred_at
       OR NEW.tier IS DISTINCT FROM OLD.tier
       OR NEW.superseded_by IS DISTINCT FROM OLD.superseded_by
       OR NEW.id IS DISTINCT FROM OLD.id THEN
        NEW.rev := nextval(pg_get_serial_sequence('memory_items', 'rev'));
    END IF;
    RETURN NEW;
END;
$$;
