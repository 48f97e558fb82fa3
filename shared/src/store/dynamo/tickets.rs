//! The component ticket item: newest wins by `CreateTime`.

use super::*;

impl TicketStore for DynamoStore {
    async fn put_ticket(&self, ticket: &StoredTicket) -> Result<TicketWrite, StoreError> {
        let item = to_item(TicketItem {
            pk: TICKET_PK.into(),
            sk: TICKET_SK.into(),
            ticket: ticket.ticket.expose_secret().to_string(),
            create_time: ticket.create_time,
            received_at: ticket.received_at,
        })?;
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(pk) OR create_time < :ct")
            .expression_attribute_values(":ct", n(ticket.create_time))
            .send()
            .await;
        Ok(if applied(result)? {
            TicketWrite::Stored
        } else {
            TicketWrite::NotNewer
        })
    }

    async fn get_ticket(&self) -> Result<Option<StoredTicket>, StoreError> {
        let Some(item) = self.get(TICKET_PK.into(), TICKET_SK).await? else {
            return Ok(None);
        };
        let t: TicketItem = from_item(item)?;
        Ok(Some(StoredTicket {
            ticket: t.ticket.into(),
            create_time: t.create_time,
            received_at: t.received_at,
        }))
    }
}
