-- Choice columns keep their choices (a JSON array of {"value", "label"}), and lookups made through
-- RelationshipDefinitions keep the relationship's SchemaName as the client named it.

ALTER TABLE dv_attributes ADD COLUMN options TEXT;
ALTER TABLE dv_attributes ADD COLUMN relationship TEXT;
