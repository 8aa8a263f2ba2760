//! SQL types pgrx has no mapping for, so that function signatures read as the SQL reference says,
//! the tenant and actor identifiers every floor passes around (`ident`), and the access levels
//! (`level`).
//!
//! Floor 1, ground: uses nothing of warden.

pub mod ident;
pub mod level;

use std::ffi::CStr;

use pgrx::callconv::{Arg, ArgAbi};
use pgrx::pg_sys;
use pgrx::pgrx_sql_entity_graph::metadata::{
    ArgumentError, ReturnsError, ReturnsRef, SqlMappingRef, SqlTranslatable, TypeOrigin,
};
use pgrx::FromDatum;

/// A PostgreSQL `name` argument (an identifier, at most 63 bytes).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SqlName(pub String);

impl FromDatum for SqlName {
    unsafe fn from_polymorphic_datum(
        datum: pg_sys::Datum,
        is_null: bool,
        _: pg_sys::Oid,
    ) -> Option<Self> {
        if is_null || datum.is_null() {
            return None;
        }
        // SAFETY: a non-null `name` datum points at a NUL-terminated NameData.
        let name = unsafe {
            CStr::from_ptr(
                datum
                    .cast_mut_ptr::<pg_sys::NameData>()
                    .cast::<std::ffi::c_char>(),
            )
        };
        Some(SqlName(name.to_string_lossy().into_owned()))
    }
}

unsafe impl<'fcx> ArgAbi<'fcx> for SqlName {
    unsafe fn unbox_arg_unchecked(arg: Arg<'_, 'fcx>) -> Self {
        // Functions taking SqlName are STRICT, so PostgreSQL never passes NULL here.
        unsafe { arg.unbox_arg_using_from_datum() }.unwrap_or_else(|| SqlName(String::new()))
    }
}

unsafe impl SqlTranslatable for SqlName {
    const TYPE_IDENT: &'static str = pgrx::pgrx_resolved_type!(SqlName);
    const TYPE_ORIGIN: TypeOrigin = TypeOrigin::External;
    const ARGUMENT_SQL: Result<SqlMappingRef, ArgumentError> = Ok(SqlMappingRef::literal("name"));
    const RETURN_SQL: Result<ReturnsRef, ReturnsError> =
        Ok(ReturnsRef::One(SqlMappingRef::literal("name")));
}

impl pgrx::IntoDatum for SqlName {
    fn into_datum(self) -> Option<pg_sys::Datum> {
        let c = std::ffi::CString::new(self.0).ok()?;
        // SAFETY: namein copies the string into a palloc'd NameData.
        unsafe {
            pgrx::fcinfo::direct_function_call_as_datum(
                pg_sys::namein,
                &[Some(pg_sys::Datum::from(c.as_ptr()))],
            )
        }
    }

    fn type_oid() -> pg_sys::Oid {
        pg_sys::NAMEOID
    }
}

// SAFETY: a `name` datum (from an array of name, already detoasted) points at a NameData.
unsafe impl pgrx::datum::UnboxDatum for SqlName {
    type As<'src> = SqlName;
    unsafe fn unbox<'src>(datum: pgrx::datum::Datum<'src>) -> Self::As<'src>
    where
        Self: 'src,
    {
        // SAFETY: see above.
        let name =
            unsafe { CStr::from_ptr(datum.sans_lifetime().cast_mut_ptr::<std::ffi::c_char>()) };
        SqlName(name.to_string_lossy().into_owned())
    }
}
