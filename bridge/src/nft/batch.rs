//! A batch: the changes of one nf_tables transaction, built message by
//! message and committed all-or-nothing.

use netlink_packet_core::{NetlinkPayload, NLM_F_ACK, NLM_F_APPEND, NLM_F_CREATE, NLM_F_REQUEST};
use netlink_packet_netfilter::nftables::{
    ChainAttribute, ChainMessage, DataAttribute, GenAttribute, GenMessage, Hook, HookNumber,
    NfTablesMessage, RuleAttribute, RuleMessage, SetAttribute, SetElementAttribute, SetFlags,
    SetMessage, TableAttribute, TableMessage,
};
use netlink_packet_netfilter::none::ControlMessage;
use netlink_packet_netfilter::{NetfilterMessageInner, NetfilterProtoFamily};

use super::rules::{comment_udata, same_rules, ListedRule, Rule};
use super::schema::{element_message, Element, Family, PortMap, BASE_CHAINS, DNAT, PORT_MAPS};
use crate::nfnetlink::{batch_begin, control_message, message, NfSocket, NftError};

/// One message of a batch, with what it does for error messages.
pub(super) struct Op {
    pub(super) message: NfTablesMessage,
    pub(super) flags: u16,
    pub(super) what: String,
}

/// The changes of one nf_tables transaction, applied all-or-nothing.
pub(super) struct Batch {
    pub(super) table: String,
    pub(super) family: Family,
    pub(super) ops: Vec<Op>,
}

impl Batch {
    pub(super) fn push(&mut self, message: NfTablesMessage, flags: u16, what: String) {
        self.ops.push(Op {
            message,
            flags,
            what,
        });
    }

    /// The table, its maps and chains; existing ones are left as they are.
    pub(super) fn create_skeleton(&mut self) {
        let table = TableMessage {
            attributes: vec![TableAttribute::Name(self.table.clone())],
        };
        let what = format!("create table {} {}", self.family.name(), self.table);
        self.push(NfTablesMessage::NewTable(table), NLM_F_CREATE, what);
        for map in &PORT_MAPS {
            self.create_map(map);
        }
        for chain in &BASE_CHAINS {
            let hook = ChainAttribute::Hook(vec![
                Hook::Number(HookNumber::Inet(chain.hook)),
                Hook::Priority(chain.priority as u32),
            ]);
            self.create_chain(chain.name, vec![hook, ChainAttribute::Type("nat".into())]);
        }
        self.create_chain(DNAT, vec![]);
    }

    pub(super) fn create_map(&mut self, map: &PortMap) {
        let set = SetMessage {
            attributes: vec![
                SetAttribute::Table(self.table.clone()),
                SetAttribute::Name(map.name.into()),
                SetAttribute::Flags(SetFlags::Map),
                SetAttribute::KeyType(map.key_type(self.family)),
                SetAttribute::KeyLen(map.key_len(self.family)),
                SetAttribute::DataType(self.family.target_type()),
                SetAttribute::DataLen(self.family.target_len()),
                SetAttribute::Id(map.id),
            ],
        };
        let what = format!(
            "create map {} in table {} {}",
            map.name,
            self.family.name(),
            self.table
        );
        self.push(NfTablesMessage::NewSet(set), NLM_F_CREATE, what);
    }

    pub(super) fn create_chain(&mut self, name: &str, base: Vec<ChainAttribute>) {
        let mut attributes = vec![
            ChainAttribute::Table(self.table.clone()),
            ChainAttribute::Name(name.into()),
        ];
        attributes.extend(base);
        let what = format!(
            "create chain {name} in table {} {}",
            self.family.name(),
            self.table
        );
        self.push(
            NfTablesMessage::NewChain(ChainMessage { attributes }),
            NLM_F_CREATE,
            what,
        );
    }

    /// Makes the rules whose comment satisfies `owned` exactly `wanted`:
    /// leaves them alone if they already are, else replaces them all.
    pub(super) fn replace_rules(
        &mut self,
        listed: &[ListedRule],
        owned: impl Fn(&str) -> bool,
        wanted: Vec<Rule>,
    ) {
        let current: Vec<&ListedRule> = listed
            .iter()
            .filter(|r| r.comment.as_deref().is_some_and(&owned))
            .collect();
        if same_rules(&current, &wanted) {
            return;
        }
        for rule in current {
            self.delete_rule(rule);
        }
        for rule in wanted {
            self.add_rule(rule);
        }
    }

    pub(super) fn add_rule(&mut self, rule: Rule) {
        let what = format!("add rule {:?} to chain {}", rule.comment, rule.chain);
        let message = RuleMessage {
            attributes: vec![
                RuleAttribute::Table(self.table.clone()),
                RuleAttribute::Chain(rule.chain.into()),
                RuleAttribute::Expressions(rule.exprs),
                RuleAttribute::UserData(comment_udata(&rule.comment)),
            ],
        };
        self.push(
            NfTablesMessage::NewRule(message),
            NLM_F_CREATE | NLM_F_APPEND,
            what,
        );
    }

    pub(super) fn delete_rule(&mut self, rule: &ListedRule) {
        let what = format!(
            "delete rule {:?} (handle {}) from chain {}",
            rule.comment.as_deref().unwrap_or_default(),
            rule.handle,
            rule.chain
        );
        let message = RuleMessage {
            attributes: vec![
                RuleAttribute::Table(self.table.clone()),
                RuleAttribute::Chain(rule.chain.clone()),
                RuleAttribute::Handle(rule.handle),
            ],
        };
        self.push(NfTablesMessage::DeleteRule(message), 0, what);
    }

    pub(super) fn add_element(&mut self, element: &Element) {
        let attributes = vec![
            SetElementAttribute::Key(DataAttribute::Value(element.key.clone())),
            SetElementAttribute::Data(DataAttribute::Value(element.target.clone())),
        ];
        let message = element_message(&self.table, element.map, attributes);
        let what = format!("publish {} in map {}", element.label, element.map);
        self.push(NfTablesMessage::NewSetElement(message), NLM_F_CREATE, what);
    }

    pub(super) fn delete_element(&mut self, element: &Element) {
        let key = SetElementAttribute::Key(DataAttribute::Value(element.key.clone()));
        let message = element_message(&self.table, element.map, vec![key]);
        let what = format!("unpublish {} from map {}", element.label, element.map);
        self.push(NfTablesMessage::DeleteSetElement(message), 0, what);
    }

    pub(super) fn delete_table(&mut self) {
        let table = TableMessage {
            attributes: vec![TableAttribute::Name(self.table.clone())],
        };
        let what = format!("delete table {} {}", self.family.name(), self.table);
        self.push(NfTablesMessage::DeleteTable(table), 0, what);
    }
}

/// The current nf_tables ruleset generation, which a batch can pin.
pub(super) fn generation(sock: &mut NfSocket) -> Result<u32, NftError> {
    let get = NfTablesMessage::GetGen(GenMessage { attributes: vec![] });
    let family = NetfilterProtoFamily::IPv4;
    let replies = sock.request(family, get, NLM_F_ACK, "read the ruleset generation")?;
    replies
        .into_iter()
        .find_map(|reply| match reply.inner {
            NetfilterMessageInner::NfTables(NfTablesMessage::NewGen(gen)) => {
                gen.attributes.into_iter().find_map(|a| match a {
                    GenAttribute::Id(id) => Some(id),
                    _ => None,
                })
            }
            _ => None,
        })
        .ok_or_else(|| NftError::Reply("no generation id in NFT_MSG_NEWGEN".into()))
}

impl Batch {
    /// Applies the batch through `sock` as one transaction; with
    /// `generation`, only if the ruleset is still at that generation (else
    /// `ERESTART`).
    pub(super) fn commit(
        &self,
        sock: &mut NfSocket,
        generation: Option<u32>,
    ) -> Result<(), NftError> {
        if self.ops.is_empty() {
            return Ok(());
        }
        let begin_seq = sock.next_seq();
        let mut msgs = vec![control_message(batch_begin(generation), begin_seq)];
        for (i, op) in self.ops.iter().enumerate() {
            // Only the last message asks for an acknowledgement.
            let ack = if i + 1 == self.ops.len() {
                NLM_F_ACK
            } else {
                0
            };
            let flags = NLM_F_REQUEST | ack | op.flags;
            let seq = sock.next_seq();
            let family = self.family.proto();
            msgs.push(message(family, 0, op.message.clone().into(), flags, seq));
        }
        let end_seq = sock.next_seq();
        msgs.push(control_message(ControlMessage::BatchEnd, end_seq));
        sock.send(&msgs)?;
        self.result(sock, begin_seq)
    }

    /// Reads the outcome of the batch, sent from sequence number `begin_seq`
    /// on. The kernel processes a batch within the send call; then it reports
    /// an error for each failing message and the acknowledgement of the last
    /// one, or only an error for the batch-begin message if the commit
    /// failed or the generation was stale.
    pub(super) fn result(&self, sock: &mut NfSocket, begin_seq: u32) -> Result<(), NftError> {
        let last_seq = begin_seq + self.ops.len() as u32;
        let mut failure = None;
        loop {
            for msg in sock.recv()? {
                let seq = msg.header.sequence_number;
                let NetlinkPayload::Error(e) = msg.payload else {
                    continue;
                };
                if !(begin_seq..=last_seq).contains(&seq) {
                    continue;
                }
                if let Some(code) = e.code {
                    let what = match (seq - begin_seq).checked_sub(1) {
                        Some(i) => self.ops[i as usize].what.clone(),
                        None => format!("commit to table {} {}", self.family.name(), self.table),
                    };
                    failure.get_or_insert(NftError::kernel(what, code));
                }
                if seq == begin_seq || seq == last_seq {
                    return failure.map_or(Ok(()), Err);
                }
            }
        }
    }
}
