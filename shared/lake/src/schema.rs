//! Arrow <-> Iceberg schemas, and fitting incoming batches to a table's schema.

use std::sync::Arc;

use datafusion::arrow::array::{RecordBatch, new_null_array};
use datafusion::arrow::compute::{CastOptions, cast_with_options};
use datafusion::arrow::datatypes::{DataType, Schema as ArrowSchema, SchemaRef};
use floe_core::{Error, Result};
use iceberg::spec::{NestedField, PrimitiveType, Schema, Type};

/// The Iceberg schema for an Arrow schema of flat, primitive columns.
///
/// Field ids are provisional: the catalog renumbers them when the table is created.
pub fn iceberg_schema(arrow: &ArrowSchema) -> Result<Schema> {
    let fields = arrow
        .fields()
        .iter()
        .enumerate()
        .map(|(i, f)| {
            let ty = primitive(f.data_type()).ok_or_else(|| {
                Error::Sql(format!(
                    "column '{}' has type {} which floe cannot store in an Iceberg table; \
                     cast it to string, bigint, double, decimal, boolean, date or timestamp",
                    f.name(),
                    f.data_type()
                ))
            })?;
            let id = i as i32 + 1;
            let field = if f.is_nullable() {
                NestedField::optional(id, f.name(), Type::Primitive(ty))
            } else {
                NestedField::required(id, f.name(), Type::Primitive(ty))
            };
            Ok(Arc::new(field))
        })
        .collect::<Result<Vec<_>>>()?;
    Schema::builder()
        .with_fields(fields)
        .build()
        .map_err(|e| Error::Internal(format!("building an Iceberg schema: {e}")))
}

pub(crate) fn primitive(t: &DataType) -> Option<PrimitiveType> {
    Some(match t {
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => PrimitiveType::String,
        DataType::Int8 | DataType::Int16 | DataType::Int32 | DataType::UInt8 | DataType::UInt16 => {
            PrimitiveType::Int
        }
        DataType::Int64 | DataType::UInt32 => PrimitiveType::Long,
        DataType::Float16 | DataType::Float32 => PrimitiveType::Float,
        DataType::Float64 => PrimitiveType::Double,
        DataType::Decimal128(p, s) if *s >= 0 => PrimitiveType::Decimal {
            precision: *p as u32,
            scale: *s as u32,
        },
        DataType::Boolean => PrimitiveType::Boolean,
        DataType::Date32 | DataType::Date64 => PrimitiveType::Date,
        DataType::Timestamp(_, Some(_)) => PrimitiveType::Timestamptz,
        DataType::Timestamp(_, None) => PrimitiveType::Timestamp,
        DataType::Binary | DataType::LargeBinary | DataType::BinaryView => PrimitiveType::Binary,
        _ => return None,
    })
}

/// Casts `batch` to the table's Arrow schema, matching columns by name.
///
/// A column the table has and the batch lacks is filled with NULLs when nullable; a column the
/// batch has and the table lacks, a NULL in a required column, or a value that does not fit the
/// column's type is an error naming the column.
pub fn fit_batch(table: &str, batch: &RecordBatch, target: &SchemaRef) -> Result<RecordBatch> {
    let source = batch.schema();
    for f in source.fields() {
        if target.field_with_name(f.name()).is_err() {
            return Err(Error::Sql(format!(
                "table {table} has no column '{}'; its columns are: {}",
                f.name(),
                target
                    .fields()
                    .iter()
                    .map(|f| f.name().as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
        }
    }
    let options = CastOptions {
        safe: false,
        ..Default::default()
    };
    let columns = target
        .fields()
        .iter()
        .map(|f| {
            let col = match source.index_of(f.name()) {
                Ok(i) => {
                    let c = batch.column(i);
                    if c.data_type() == f.data_type() {
                        c.clone()
                    } else {
                        cast_with_options(c, f.data_type(), &options).map_err(|e| {
                            Error::Sql(format!(
                                "column '{}' of {table}: cannot store {} as {}: {e}",
                                f.name(),
                                c.data_type(),
                                f.data_type()
                            ))
                        })?
                    }
                }
                Err(_) => new_null_array(f.data_type(), batch.num_rows()),
            };
            if !f.is_nullable() && col.null_count() > 0 {
                return Err(Error::Sql(format!(
                    "column '{}' of {table} is required (NOT NULL) but {} of {} rows are NULL",
                    f.name(),
                    col.null_count(),
                    batch.num_rows()
                )));
            }
            Ok(col)
        })
        .collect::<Result<Vec<_>>>()?;
    RecordBatch::try_new(target.clone(), columns)
        .map_err(|e| Error::Internal(format!("fitting a batch to {table}: {e}")))
}

/// The schema `md`'s current one becomes after `edits`, or None when every edit is already in
/// effect. Field ids stay; new and replacing fields take ids after the table's last one.
pub(crate) fn evolved(
    md: &iceberg::spec::TableMetadata,
    edits: &[floe_core::ports::SchemaEdit],
) -> Result<Option<Schema>> {
    use floe_core::ports::SchemaEdit;
    let current = md.current_schema();
    let mut fields: Vec<NestedField> = current
        .as_struct()
        .fields()
        .iter()
        .map(|f| (**f).clone())
        .collect();
    let mut next_id = md.last_column_id() + 1;
    let mut changed = false;
    let ty_of = |name: &str, t: &DataType| {
        primitive(t).map(Type::Primitive).ok_or_else(|| {
            Error::Sql(format!(
                "column '{name}' cannot have type {t} in an Iceberg table"
            ))
        })
    };
    for edit in edits {
        let (name, position) = match edit {
            SchemaEdit::AddColumn { name, .. }
            | SchemaEdit::WidenColumn { name, .. }
            | SchemaEdit::ReplaceColumn { name, .. }
            | SchemaEdit::DropColumn { name }
            | SchemaEdit::MakeOptional { name } => {
                (name, fields.iter().position(|f| &f.name == name))
            }
        };
        match (edit, position) {
            (SchemaEdit::AddColumn { ty, .. }, None) => {
                fields.push(NestedField::optional(next_id, name, ty_of(name, ty)?));
                next_id += 1;
                changed = true;
            }
            (SchemaEdit::AddColumn { .. }, Some(_)) => {}
            (SchemaEdit::WidenColumn { ty, .. }, Some(i)) => {
                let to = ty_of(name, ty)?;
                if *fields[i].field_type != to {
                    if !promotes(&fields[i].field_type, &to) {
                        return Err(Error::Sql(format!(
                            "column '{name}' is {} and Iceberg cannot widen it to {to} in place",
                            fields[i].field_type
                        )));
                    }
                    *fields[i].field_type = to;
                    changed = true;
                }
            }
            (SchemaEdit::ReplaceColumn { ty, .. }, Some(i)) => {
                let to = ty_of(name, ty)?;
                if *fields[i].field_type != to {
                    let mut field = NestedField::optional(next_id, name, to);
                    field.doc = fields[i].doc.clone();
                    fields[i] = field;
                    next_id += 1;
                    changed = true;
                }
            }
            (SchemaEdit::DropColumn { .. }, Some(i)) => {
                fields.remove(i);
                changed = true;
            }
            (SchemaEdit::DropColumn { .. }, None) => {}
            (SchemaEdit::MakeOptional { .. }, Some(i)) => {
                if fields[i].required {
                    fields[i].required = false;
                    changed = true;
                }
            }
            (_, None) => {
                return Err(Error::Sql(format!("there is no column '{name}' to change")));
            }
        }
    }
    if !changed {
        return Ok(None);
    }
    let identifiers: Vec<i32> = current
        .identifier_field_ids()
        .filter(|id| fields.iter().any(|f| f.id == *id && f.required))
        .collect();
    Schema::builder()
        .with_fields(fields.into_iter().map(Arc::new))
        .with_identifier_field_ids(identifiers)
        .build()
        .map(Some)
        .map_err(|e| Error::Internal(format!("building an evolved schema: {e}")))
}

/// Whether Iceberg promotes `from` to `to` in place (the spec's allowed type promotions).
pub(crate) fn promotes(from: &Type, to: &Type) -> bool {
    use PrimitiveType as P;
    match (from, to) {
        (Type::Primitive(a), Type::Primitive(b)) => match (a, b) {
            (P::Int, P::Long) | (P::Float, P::Double) => true,
            (
                P::Decimal {
                    precision: p1,
                    scale: s1,
                },
                P::Decimal {
                    precision: p2,
                    scale: s2,
                },
            ) => s1 == s2 && p2 >= p1,
            _ => false,
        },
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use datafusion::arrow::array::{Int32Array, Int64Array, StringArray};
    use datafusion::arrow::datatypes::Field;

    use super::*;

    #[test]
    fn batches_are_cast_by_name_and_checked() {
        let target: SchemaRef = Arc::new(ArrowSchema::new(vec![
            Field::new("id", DataType::Int64, false),
            Field::new("name", DataType::Utf8, true),
        ]));
        let src = RecordBatch::try_new(
            Arc::new(ArrowSchema::new(vec![Field::new(
                "id",
                DataType::Int32,
                true,
            )])),
            vec![Arc::new(Int32Array::from(vec![1, 2]))],
        )
        .unwrap();
        let fitted = fit_batch("t", &src, &target).unwrap();
        assert_eq!(fitted.schema(), target);
        assert_eq!(fitted.column(1).null_count(), 2);
        let ids = fitted
            .column(0)
            .as_any()
            .downcast_ref::<Int64Array>()
            .unwrap();
        assert_eq!(ids.values(), &[1, 2]);

        let extra = RecordBatch::try_new(
            Arc::new(ArrowSchema::new(vec![Field::new(
                "nope",
                DataType::Utf8,
                true,
            )])),
            vec![Arc::new(StringArray::from(vec!["x"]))],
        )
        .unwrap();
        let err = fit_batch("t", &extra, &target).unwrap_err().to_string();
        assert!(err.contains("no column 'nope'"), "{err}");

        let null_key = RecordBatch::try_new(
            Arc::new(ArrowSchema::new(vec![Field::new(
                "id",
                DataType::Int64,
                true,
            )])),
            vec![Arc::new(Int64Array::from(vec![Some(1), None]))],
        )
        .unwrap();
        let err = fit_batch("t", &null_key, &target).unwrap_err().to_string();
        assert!(err.contains("'id' of t is required"), "{err}");
    }

    #[test]
    fn unsupported_types_are_named() {
        let s = ArrowSchema::new(vec![Field::new(
            "xs",
            DataType::List(Arc::new(Field::new("item", DataType::Int32, true))),
            true,
        )]);
        let err = iceberg_schema(&s).unwrap_err().to_string();
        assert!(err.contains("column 'xs'"), "{err}");
    }
}
