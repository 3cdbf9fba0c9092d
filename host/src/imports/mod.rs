//! The host side of the WIT imports: thin adapters from the generated traits to the
//! broker and to [`HostInner`](crate::host::HostInner).
//!
//! Each adapter converts at the seam in one place: broker and call errors become the WIT
//! error variants the guest sees, while a stale or foreign resource handle, or a full
//! resource table, becomes a trap of the calling guest (`?` on the table) — never a
//! host panic.

pub(crate) mod channels;
pub(crate) mod functions;
