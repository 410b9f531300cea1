//! Schema pieces shared by the migrations.
use sea_orm_migration::prelude::*;

/// A foreign key whose rows go with their parent: deleting a client or user removes what
/// hangs off it, and deleting a grant removes its tokens and codes.
pub fn cascade(
    table: impl IntoIden,
    column: impl IntoIden,
    parent: impl IntoIden,
    parent_column: impl IntoIden,
) -> ForeignKeyCreateStatement {
    ForeignKey::create()
        .from_tbl(table)
        .from_col(column)
        .to_tbl(parent)
        .to_col(parent_column)
        .on_delete(ForeignKeyAction::Cascade)
        .to_owned()
}

/// A plain index named `idx_<table>_<column>`.
pub fn index(table: impl IntoIden, column: impl IntoIden) -> IndexCreateStatement {
    let (table, column) = (table.into_iden(), column.into_iden());
    Index::create()
        .name(format!("idx_{table}_{column}"))
        .table(table)
        .col(column)
        .to_owned()
}

/// Drops `tables` in order (children first).
pub async fn drop_tables(
    manager: &SchemaManager<'_>,
    tables: impl IntoIterator<Item = DynIden>,
) -> Result<(), DbErr> {
    for table in tables {
        manager
            .drop_table(Table::drop().table(table).to_owned())
            .await?;
    }
    Ok(())
}
